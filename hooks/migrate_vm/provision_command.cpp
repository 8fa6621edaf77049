#include "hooks/migrate_vm/provision_command.h"

#include <fstream>
#include <iostream>
#include <random>
#include <sstream>

#include "connectors/ssh/ssh_factory.h"
#include "connectors/truenas/provision_plan.h"
#include "connectors/truenas/target.h"
#include "engine/vm_spec.h"
#include "hooks/migrate_vm/cli_util.h"
#include "hooks/migrate_vm/ssh_options.h"
#include "hooks/migrate_vm/truenas_options.h"

namespace vmlift::cli {
namespace {

int fail(Context& ctx, const Status& st) {
    ctx.logger.error("provision", st.message());
    return exit_code_for(st.code());
}

}  // namespace

void add_provision_command(CLI::App& app, ProvisionOptions& o) {
    auto* cmd =
        app.add_subcommand("provision", "create the target zvols, VM and devices on TrueNAS");
    cmd->add_option("--spec", o.spec_file, "the VmSpec JSON (migrate-vm --json inspect ...)");
    cmd->add_option("--target", o.target, "truenas://HOST/POOL[/DATASET]")->required();
    cmd->add_option("--target-version", o.target_version,
                    "TrueNAS release (24.10, 25.04.2, 25.10, 26): decides the payload shapes");
    cmd->add_option("--target-name", o.target_name, "the VM's name on TrueNAS");
    cmd->add_option("--run-id", o.run_id, "marker put on every object (default: random)");
    cmd->add_option("--zvol", o.zvols, "DISKKEY=NAME: name of a disk's zvol (repeatable)");
    cmd->add_option("--bridge", o.bridge, "attach every NIC to this bridge");
    cmd->add_option("--bridge-map", o.bridge_map, "SRC=DST,...: bridge per source bridge");
    cmd->add_flag("--dry-run", o.dry_run, "print the API calls in order; connect to nothing");
    cmd->add_flag("--rollback", o.rollback,
                  "delete what the run --run-id created on the target (its VM and zvols only)");
    add_truenas_options(*cmd, o.truenas);
    cmd->add_flag("--force-size", o.force_size,
                  "create zvols even where TrueNAS warns that the size is unsafe (force_size)");
    cmd->add_flag("--display", o.display, "add a SPICE display device bound to 127.0.0.1");
    cmd->add_option("--display-password-file", o.display_password_file,
                    "file holding the display password (24.10 requires one)");
    cmd->add_flag("--inventory", o.inventory,
                  "print what the target has (version, pools, datasets and their exec "
                  "property, interfaces, NIC choices, vCPU maximum, bootloaders, VMs) and stop");
}

int run_provision(Context& ctx, const ProvisionOptions& o) {
    if (o.inventory) {
        auto url = truenas::parse_truenas_url(o.target);
        if (!url.ok()) {
            return fail(ctx, url.status());
        }
        auto session = connect_truenas(ctx, o.truenas, *url);
        if (!session.ok()) {
            return fail(ctx, session.status());
        }
        auto inv = session->target->inventory();
        if (!inv.ok()) {
            return fail(ctx, inv.status());
        }
        std::cout << inv->dump(ctx.global.json ? -1 : 2) << std::endl;
        return 0;
    }
    if (o.rollback) {
        if (o.run_id.empty()) {
            return fail(ctx, Status(Code::invalid_input, "--rollback needs --run-id of the run"));
        }
        auto url = truenas::parse_truenas_url(o.target);
        if (!url.ok()) {
            return fail(ctx, url.status());
        }
        auto target = connect_truenas(ctx, o.truenas, *url);
        if (!target.ok()) {
            return fail(ctx, target.status());
        }
        auto done = target->target->rollback("vmlift run " + o.run_id);
        if (!done.ok()) {
            return fail(ctx, done.status());
        }
        nlohmann::json j = {{"vms_deleted", done->vms_deleted},
                            {"zvols_deleted", done->zvols_deleted}};
        if (ctx.global.json) {
            std::cout << j.dump() << std::endl;
        } else {
            std::cout << "Deleted " << done->vms_deleted.size() << " VM(s) and "
                      << done->zvols_deleted.size() << " zvol(s) of run " << o.run_id << ": "
                      << j.dump() << std::endl;
        }
        return 0;
    }
    if (o.dry_run && o.target_version.empty()) {
        return fail(ctx, Status(Code::invalid_input,
                                "--dry-run connects to nothing, so it needs --target-version "
                                "(24.10, 25.04.2, 25.10 or 26)"));
    }
    if (o.spec_file.empty()) {
        return fail(ctx, Status(Code::invalid_input, "--spec is required (the VmSpec JSON)"));
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
    TrueNasSession session;
    if (!o.dry_run) {
        auto connected = connect_truenas(ctx, o.truenas, *target);
        if (!connected.ok()) {
            return fail(ctx, connected.status());
        }
        session = std::move(*connected);
        if (!o.target_version.empty() && truenas::parse_release(o.target_version).ok() &&
            *truenas::parse_release(o.target_version) != session.target->release()) {
            ctx.logger.warn("provision", "--target-version " + o.target_version +
                                             " ignored: the server runs TrueNAS " +
                                             session.target->version());
        }
    }
    auto release = session.target ? Result<truenas::Release>(session.target->release())
                                  : truenas::parse_release(o.target_version);
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
    po.force_size = o.force_size;
    po.display = o.display;
    if (!o.display_password_file.empty()) {
        auto pw =
            read_secret_file(o.display_password_file, "--display-password-file", ctx.redactor);
        if (!pw.ok()) {
            return fail(ctx, pw.status());
        }
        po.display_password = *pw;
    }
    po.default_bridge = o.bridge;
    auto zvols = key_value_pairs(o.zvols, "--zvol");
    auto bridges = key_value_pairs(split(o.bridge_map, ','), "--bridge-map");
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
    if (session.target) {
        auto done = session.target->provision(*plan, *target);
        if (!done.ok()) {
            return fail(ctx, done.status());
        }
        nlohmann::json j = done->to_json();
        j["run_id"] = po.run_id;
        j["truenas_version"] = session.target->version();
        j["notes"] = plan->notes;
        if (ctx.global.json) {
            std::cout << j.dump() << std::endl;
        } else {
            std::cout << "VM " << done->vm_name << " (id " << done->vm_id << ") "
                      << (done->vm_reused ? "already there" : "created") << " on " << target->host
                      << " (TrueNAS " << session.target->version() << "), run " << po.run_id << ": "
                      << done->zvols_created.size() << " zvol(s) created, "
                      << done->zvols_reused.size() << " reused; " << done->devices_created
                      << " device(s) created, " << done->devices_reused << " reused\n";
            for (const auto& note : plan->notes) {
                std::cout << "  note: " << note << "\n";
            }
            for (const auto& w : done->warnings) {
                std::cout << "  warning: " << w << "\n";
            }
            std::cout << "Undo with: migrate-vm provision --target " << o.target << " --spec "
                      << o.spec_file << " --run-id " << po.run_id << " --rollback\n";
            std::cout.flush();
        }
        return 0;
    }
    if (ctx.global.json) {
        for (const auto& call : plan->calls) {
            std::cout << ctx.redactor.redact(call.to_json().dump()) << "\n";
        }
        std::cout.flush();
        return 0;
    }
    std::cout << "Provisioning " << plan->vm_name << " on " << target->host << " (TrueNAS "
              << truenas::to_string(*release) << "), marker \"" << plan->marker << "\":\n";
    int n = 1;
    for (const auto& call : plan->calls) {
        std::cout << "  " << n++ << ". " << call.method << " "
                  << ctx.redactor.redact(call.params.dump())
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
