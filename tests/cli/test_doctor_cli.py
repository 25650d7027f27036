"""`nnsim doctor`: trains, prints the findings, exits 0 when healthy and 1 with findings."""

import json

from nnsim.cli import main

SIGMOID_DEEP = ["--set", "model.activation=sigmoid",
                "--set", "model.hidden=[32,32,32,32,32,32,32,32]"]


def test_a_healthy_run_exits_0(capsys):
    assert main(["doctor", "--steps", "600"]) == 0
    assert "healthy after 600 steps" in capsys.readouterr().out


def test_findings_are_printed_with_evidence_remedy_and_lecture_and_exit_1(capsys):
    assert main(["doctor", "--steps", "100", *SIGMOID_DEEP]) == 1
    out = capsys.readouterr().out
    assert "vanishing gradients: layer 1" in out
    assert "remedy:   use ReLU" in out and "--set model.activation=relu" in out
    assert "lecture:  Architectural Considerations" in out


def test_json_lists_each_finding(capsys):
    assert main(["doctor", "--steps", "100", "--json", *SIGMOID_DEEP]) == 1
    report = json.loads(capsys.readouterr().out)
    codes = [f["code"] for f in report["findings"]]
    assert report["steps"] == 100 and "vanishing_gradients" in codes
    vanishing = report["findings"][codes.index("vanishing_gradients")]
    assert vanishing["fix"] == {"model.activation": "relu", "model.initializer": "he_normal"}


def test_bad_input_is_one_line_exit_2(capsys):
    assert main(["doctor", "--steps", "0"]) == 2
    assert main(["doctor", "--set", "model.activaton=relu"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "did you mean" in err[1]
