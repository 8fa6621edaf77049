#include "hooks/migrate_vm/provision_command.h"

#include <fstream>
#include <iostream>
#include <random>
#include <sstream>

#include "connectors/truenas/provision_plan.h"
#include "engine/vm_spec.h"

namespace vmlift::cli {
namespace {

int fail(Context& ctx, const Status& st) {
    ctx.logger.error("provision", st.message());
    return exit_code_for(st.code());
}

Result<std::map<std::string, std::string>> pairs(const std::vector<std::string>& items,
                                                 const char* option) {
    std::map<std::string, std::string> out;
    for (const auto& item : items) {
        size_t eq = item.find('=');
        if (eq == std::string::npos || eq == 0 || eq + 1 == item.size()) {
            return Status(Code::invalid_input,
                          std::string(option) + " '" + item + "' is not KEY=VALUE");
        }
        out[item.substr(0, eq)] = item.substr(eq + 1);
    }
    return out;
}

std::vector<std::string> split_commas(const std::string& s) {
    std::vector<std::string> out;
    std::stringstream in(s);
    std::string item;
    while (std::getline(in, item, ',')) {
        if (!item.empty()) {
            out.push_back(item);
        }
    }
    return out;
}

}  // namespace

void add_provision_command(CLI::App& app, ProvisionOptions& o) {
    auto* cmd =
        app.add_subcommand("provision", "create the target zvols, VM and devices on TrueNAS");
    cmd->add_option("--spec", o.spec_file, "the VmSpec JSON (migrate-vm --json inspect ...)")
        ->required();
    cmd->add_option("--target", o.target, "truenas://HOST/POOL[/DATASET]")->required();
    cmd->add_option("--target-version", o.target_version,
                    "TrueNAS release (24.10, 25.04.2, 25.10, 26): decides the payload shapes");
    cmd->add_option("--target-name", o.target_name, "the VM's name on TrueNAS");
    cmd->add_option("--run-id", o.run_id, "marker put on every object (default: random)");
    cmd->add_option("--zvol", o.zvols, "DISKKEY=NAME: name of a disk's zvol (repeatable)");
    cmd->add_option("--bridge", o.bridge, "attach every NIC to this bridge");
    cmd->add_option("--bridge-map", o.bridge_map, "SRC=DST,...: bridge per source bridge");
    cmd->add_flag("--dry-run", o.dry_run, "print the API calls in order; connect to nothing");
}

int run_provision(Context& ctx, const ProvisionOptions& o) {
    if (!o.dry_run) {
        return fail(ctx, Status(Code::invalid_input,
                                "provisioning a live TrueNAS is not in this version yet; run "
                                "with --dry-run to see the calls it will make"));
    }
    if (o.target_version.empty()) {
        return fail(ctx, Status(Code::invalid_input,
                                "--dry-run connects to nothing, so it needs --target-version "
                                "(24.10, 25.04.2, 25.10 or 26)"));
    }
    std::ifstream in(o.spec_file);
    if (!in) {
        return fail(ctx, Status(Code::not_found, "--spec " + o.spec_file + " cannot be read"));
    }
    std::stringstream text;
    text << in.rdbuf();
    auto json = nlohmann::json::parse(text.str(), nullptr, false);
    if (json.is_discarded()) {
        return fail(ctx, Status(Code::invalid_input, "--spec " + o.spec_file + " is not JSON"));
    }
    auto spec = vm_spec_from_json(json);
    if (!spec.ok()) {
        return fail(ctx,
                    Status(spec.status().code(), o.spec_file + ": " + spec.status().message()));
    }
    auto target = truenas::parse_truenas_url(o.target);
    if (!target.ok()) {
        return fail(ctx, target.status());
    }
    auto release = truenas::parse_release(o.target_version);
    if (!release.ok()) {
        return fail(ctx, release.status());
    }
    truenas::ProvisionOptions po;
    po.run_id = o.run_id;
    if (po.run_id.empty()) {
        std::random_device rd;
        char buf[9];
        std::snprintf(buf, sizeof buf, "%08x", rd());
        po.run_id = buf;
    }
    po.target_name = o.target_name;
    po.default_bridge = o.bridge;
    auto zvols = pairs(o.zvols, "--zvol");
    auto bridges = pairs(split_commas(o.bridge_map), "--bridge-map");
    if (!zvols.ok()) {
        return fail(ctx, zvols.status());
    }
    if (!bridges.ok()) {
        return fail(ctx, bridges.status());
    }
    po.zvol_names = *zvols;
    po.bridge_map = *bridges;
    auto plan = truenas::plan_provision(*spec, *target, *release, po);
    if (!plan.ok()) {
        return fail(ctx, plan.status());
    }
    if (ctx.global.json) {
        for (const auto& call : plan->calls) {
            std::cout << call.to_json().dump() << "\n";
        }
        std::cout.flush();
        return 0;
    }
    std::cout << "Provisioning " << plan->vm_name << " on " << target->host << " (TrueNAS "
              << truenas::to_string(*release) << "), marker \"" << plan->marker << "\":\n";
    int n = 1;
    for (const auto& call : plan->calls) {
        std::cout << "  " << n++ << ". " << call.method << " " << call.params.dump()
                  << (call.rest_path.empty()
                          ? ""
                          : "  [" + call.rest_method + " " + call.rest_path + "]")
                  << "\n";
    }
    for (const auto& note : plan->notes) {
        std::cout << "  note: " << note << "\n";
    }
    std::cout.flush();
    return 0;
}

}  // namespace vmlift::cli
