"""tests/conftest.py's rule: under CI a skipped test fails the run, unless it is marked gpu."""
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

TESTS = '''
import pytest

def test_runs():
    pass

@pytest.mark.gpu
def test_needs_cuda():
    pytest.skip("no CUDA device")

@pytest.mark.xfail(reason="known", strict=True)
def test_known_failure():
    raise AssertionError
'''
SKIPPED = '''
import pytest

def test_skipped():
    pytest.skip("optional package missing")
'''
MODULE_SKIPPED = '''
import pytest

pytest.importorskip("a_package_that_is_not_installed")

def test_never_collected():
    pass
'''


@pytest.fixture
def run(pytester, monkeypatch):
    """run(ci, **modules): a pytest run of ``modules`` with this project's conftest."""
    pytester.makeconftest((Path(__file__).parent / "conftest.py").read_text())

    def run(ci, **modules):
        if ci is None:
            monkeypatch.delenv("CI", raising=False)
        else:
            monkeypatch.setenv("CI", ci)
        pytester.makepyfile(**modules)
        return pytester.runpytest_inprocess("-rs", "-p", "no:cacheprovider")
    return run


@pytest.mark.parametrize("ci", ["true", "1"])
def test_a_skip_fails_the_run_under_ci_and_is_named(run, ci):
    result = run(ci, test_plain=TESTS, test_optional=SKIPPED)
    result.assert_outcomes(passed=1, skipped=2, xfailed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*skipped under CI (fails the run)*",
                                 "test_optional.py::test_skipped: Skipped: optional package missing"])
    assert "test_needs_cuda" not in result.stdout.str().split("skipped under CI")[1]


def test_a_module_skipped_at_import_fails_the_run_under_ci(run):
    result = run("true", test_plain=TESTS, test_module=MODULE_SKIPPED)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*skipped under CI*", "test_module.py: *a_package_that_is_not_installed*"])


def test_a_gpu_skip_alone_passes_under_ci(run):
    result = run("true", test_plain=TESTS)
    result.assert_outcomes(passed=1, skipped=1, xfailed=1)
    assert result.ret == pytest.ExitCode.OK
    assert "skipped under CI" not in result.stdout.str()
    result.stdout.fnmatch_lines(["SKIPPED *no CUDA device"])  # still listed by -rs


@pytest.mark.parametrize("ci", [None, "", "false", "0"])
def test_outside_ci_a_skip_is_listed_and_the_run_passes(run, ci):
    result = run(ci, test_plain=TESTS, test_optional=SKIPPED, test_module=MODULE_SKIPPED)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["SKIPPED *optional package missing"])
    assert "skipped under CI" not in result.stdout.str()


def test_a_failing_run_keeps_its_exit_status(run):
    result = run("true", test_failing="def test_fails():\n    assert False\n", test_optional=SKIPPED)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(failed=1, skipped=1)


def test_the_project_lists_skips():
    """pytest is configured to print every skip with its reason (pyproject's addopts) and knows the gpu marker."""
    import tomllib
    options = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["tool"]["pytest"]
    assert "s" in options["ini_options"]["addopts"].split("-r", 1)[1].split()[0]
    assert any(m.startswith("gpu:") for m in options["ini_options"]["markers"])
