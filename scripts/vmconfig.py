"""VM configurations for tests and benchmarks: VM dicts written as a VM-config
DTB (docs/config.md) that Quire takes as its boot module (QEMU -initrd)."""
import pathlib
import subprocess


def memtest(mode, vcpus=1, mem_mib=64, limit_mib=None, name=None, blocks="off", **kw):
    """A memtest VM (tests/guests/memtest.c) in `mode`, for vm_config(). Without 2 MiB blocks unless
    asked: its modes count their fills page by page (the blocks modes ask)."""
    return dict(name=name, kernel="memtest", vcpus=vcpus, memory_mib=mem_mib,
                resident_limit_mib=limit_mib or mem_mib, arg=mode, blocks=blocks, **kw)


def linux(vcpus=2, mem_mib=512, limit_mib=None, name=None, **kw):
    """A Linux VM: Debian's kernel and the test initramfs."""
    return dict(name=name, kernel="linux", initramfs="linux_initrd", vcpus=vcpus,
                memory_mib=mem_mib, resident_limit_mib=limit_mib or mem_mib, **kw)


def quota_pages(vm):
    """The pages a VM may hold (core/vmconfig_check.c, vmconfig_quota_pages)."""
    mem = vm["memory_mib"]
    return vm["resident_limit_mib"] * 256 + 1 + -(-mem // 1024) + -(-mem // 2) + 2


def _dts_value(v):
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, (list, tuple)):
        return "<" + " ".join(str(x) for x in v) + ">"
    return f"<{v}>"


def vm_config(vms, path, machine_mib=None):
    """Write VM dicts as a VM-config DTB (docs/config.md) at path; names default to vm1, vm2, ..."""
    nodes = []
    for i, vm in enumerate(vms, 1):
        props = []
        for key, val in vm.items():
            if key == "name" or val is None:
                continue
            prop = key.replace("_", "-")
            if key in ("arg", "memory_base"):
                props.append(f"\t\t\t{prop} = /bits/ 64 <{val}>;")
            else:
                props.append(f"\t\t\t{prop} = {_dts_value(val)};")
        nodes.append(f"\t\t{vm.get('name') or f'vm{i}'} {{\n" + "\n".join(props) + "\n\t\t};")
    root = f"\tmachine-memory-mib = <{machine_mib}>;\n" if machine_mib else ""
    dts = ("/dts-v1/;\n/ {\n\tcompatible = \"quire,vm-config\";\n" + root +
           "\tvms {\n" + "\n".join(nodes) + "\n\t};\n};\n")
    path = pathlib.Path(path)
    path.with_suffix(".dts").write_text(dts)
    subprocess.run(["dtc", "-q", "-I", "dts", "-O", "dtb", "-o", str(path), str(path.with_suffix(".dts"))],
                   check=True)
    return str(path)


