# lit configuration for cramc's FileCheck suites.
# Run through ctest, or by hand:
#   lit -sv tests/lit --param build=build --param filecheck=/usr/bin/FileCheck-14 --param source=.
import os
import lit.formats

config.name = "cramc"
config.test_format = lit.formats.ShTest(execute_external=False)
config.suffixes = [".cram", ".ir", ".test"]
config.excludes = ["Inputs", "lit.cfg.py"]
config.test_source_root = os.path.dirname(__file__)

params = lit_config.params
build = os.path.abspath(params.get("build", "build"))
source = os.path.abspath(params.get("source", os.path.join(config.test_source_root, "..", "..")))
filecheck = params.get("filecheck", "FileCheck-14")
config.test_exec_root = os.path.join(build, "tests", "lit")

config.substitutions.append(("%cramc", os.path.join(build, "driver", "cramc")))
config.substitutions.append(("%cram", os.path.join(build, "runtime", "cram")))
config.substitutions.append(("%models", os.path.join(source, "models")))
config.substitutions.append(("%source", source))
config.substitutions.append(("FileCheck", filecheck))
config.environment["LC_ALL"] = "C"
