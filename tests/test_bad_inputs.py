"""Every bad input of the table (tests/bad_inputs_*.py) gets its named error, and README shows what they say."""
import pytest

from bad_input_table import README, all_cases, readme_table, run_case, table

CASES = all_cases()


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    """Each case runs once; the per-case tests and the README check share the outcomes."""
    folder, done = tmp_path_factory.mktemp("bad_inputs"), {}

    def outcome(case):
        if case.id not in done:
            done[case.id] = run_case(case, folder / f"case{len(done)}")
        return done[case.id]
    return outcome


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_gets_its_message(case, outcomes):
    outcome = outcomes(case)
    assert "Traceback" not in outcome.stderr, outcome.stderr
    assert outcome.status == case.status, outcome.stderr
    assert case.expect in outcome.message, outcome.stderr


def test_readme_shows_what_the_programs_say(outcomes):
    expected = table(CASES, [outcomes(c) for c in CASES])
    assert readme_table(README.read_text()) == expected, \
        "README's bad-input table is out of date: run .venv/bin/python tests/bad_input_table.py --write"
