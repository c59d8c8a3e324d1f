"""Builds the _rhead extension of the rhead package with CMake (see pyproject.toml).

RHEAD_BUILD_DIR names the CMake build folder to use (default: a temporary folder of pip's).
"""
import os
import shutil
import subprocess
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = os.path.dirname(os.path.abspath(__file__))


class CMakeBuild(build_ext):
    def build_extension(self, ext):
        build = os.environ.get("RHEAD_BUILD_DIR") or os.path.join(os.path.abspath(self.build_temp), "cmake")
        subprocess.check_call(["cmake", "-S", ROOT, "-B", build, "-DCMAKE_BUILD_TYPE=Release",
                               f"-DPython3_EXECUTABLE={sys.executable}"])
        subprocess.check_call(["cmake", "--build", build, "--target", "_rhead", "-j", str(os.cpu_count() or 1)])
        built = os.path.join(build, "python", "rhead")
        names = [n for n in os.listdir(built) if n.startswith("_rhead") and n.endswith(".so")]
        if not names:
            raise RuntimeError(f"{built}: the CMake build made no _rhead module")
        target = self.get_ext_fullpath(ext.name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copyfile(os.path.join(built, names[0]), target)


# setuptools' own build folder goes inside CMake's (build/ is git-ignored).
setup(ext_modules=[Extension("rhead._rhead", sources=[])], cmdclass={"build_ext": CMakeBuild},
      options={"build": {"build_base": os.path.join("build", "pip")}})
