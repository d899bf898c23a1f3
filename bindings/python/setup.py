"""Builds the CPython extension hunyuan._native (stable ABI, Python ≥ 3.11) against libhunyuan.

The Swift library is built by the repository's `make build` (or taken from HUNYUAN_PREBUILT_LIB) and
copied next to the extension together with the shared libraries it needs beyond glibc/libstdc++
(OpenBLAS, gfortran, quadmath, zlib, libjpeg), so the wheel runs on a machine without Swift or OpenBLAS: the
extension finds libhunyuan through RPATH $ORIGIN, and libhunyuan finds the bundled libraries
through its own RPATH $ORIGIN/libs.
"""
import os
import shutil
import subprocess
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent

# Libraries every Linux system has; everything else libhunyuan needs is bundled.
SYSTEM_LIBS = ("linux-vdso", "libc.so", "libm.so", "libstdc++", "libgcc_s", "ld-linux", "libpthread", "libdl", "librt")


def bundled_dependencies(lib):
    out = subprocess.run(["ldd", str(lib)], check=True, capture_output=True, text=True).stdout
    deps = []
    for line in out.splitlines():
        parts = line.split("=>")
        if len(parts) != 2:
            continue
        name, target = parts[0].strip(), parts[1].split("(")[0].strip()
        if not target or name.startswith(SYSTEM_LIBS):
            continue
        deps.append((name, Path(target)))
    return deps


class BuildWithLibrary(build_ext):
    def run(self):
        prebuilt = os.environ.get("HUNYUAN_PREBUILT_LIB")
        if prebuilt:
            lib = Path(prebuilt)
        else:
            subprocess.check_call(["make", "-C", str(ROOT), "build"])
            lib = ROOT / "build" / "libhunyuan.so.0"
        pkg = Path(self.build_lib) / "hunyuan"
        libs = pkg / "libs"
        libs.mkdir(parents=True, exist_ok=True)
        shutil.copy2(lib, pkg / "libhunyuan.so.0")
        for name, path in bundled_dependencies(lib):
            shutil.copy2(path, libs / name)
        # built-in models travel with the library: `builtin:NAME` finds models/ beside libhunyuan
        models = ROOT / "models"
        if models.is_dir():
            shutil.copytree(models, pkg / "models", dirs_exist_ok=True)
        # the extension links against the copy next to it
        for ext in self.extensions:
            ext.library_dirs.append(str(pkg))
        super().run()
        if self.inplace:
            dst = HERE / "hunyuan"
            shutil.copy2(lib, dst / "libhunyuan.so.0")
            shutil.copytree(libs, dst / "libs", dirs_exist_ok=True)
            if models.is_dir():
                shutil.copytree(models, dst / "models", dirs_exist_ok=True)


setup(
    ext_modules=[
        Extension(
            "hunyuan._native",
            # one file per type (see src/_native.h); the module and shared helpers in _native.c
            sources=[f"src/{name}.c" for name in
                     ("_native", "checkpoint", "mesh", "tokenizer", "model", "session", "recon", "mvd", "gen3d")],
            depends=["src/_native.h", str(ROOT / "include" / "hunyuan.h")],
            include_dirs=[str(ROOT / "include")],
            extra_compile_args=["-fvisibility=hidden"],  # only PyInit__native is exported
            libraries=[":libhunyuan.so.0"],
            runtime_library_dirs=["$ORIGIN"],
            extra_link_args=["-Wl,--disable-new-dtags"],
            define_macros=[("Py_LIMITED_API", "0x030B0000")],
            py_limited_api=True,
        )
    ],
    cmdclass={"build_ext": BuildWithLibrary},
)
