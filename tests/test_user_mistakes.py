"""Mistakes a new user makes, through the console script: each is refused with exit code 2
and a one-line message naming the key (nothing computed, nothing written, no traceback).

Most run the console script's function (``cavity_eliashberg.main``, what the
``cavity-eliashberg`` command calls) in this process: a refusal happens before any
computation, so each takes milliseconds; a few run as real processes, side by side.
"""

import os
import subprocess
import sys
import warnings

import pytest

from cavity_eliashberg import main

BASE = """
title = "mistakes"
compute = ["perturbative"]
[model]
t_qp = 0.9
tau_in = 1000
[grid]
n = 60
[[baths]]
type = "multimode_cavity"
name = "cavity"
omega0 = "3 Delta0"
t_cav = "0.5 T_qp"
eta = "0.0155 / tau_in"
[output]
name = "m"
[figure]
kind = "none"
"""
SWEEP = '[sweep]\n"cavity.omega0" = { values = [2.0, 3.0], unit = "Delta0" }\n'


def _edit(old, new, text=BASE):
    assert old in text, old
    return text.replace(old, new, 1)


# (name, configuration text, extra arguments, words the message must contain)
MISTAKES = [
    ("section typo", _edit("[grid]", "[gird]"), [], ["gird", "unknown key"]),
    ("grid key typo", _edit("n = 60", "nn = 60"), [], ["grid.nn", "unknown key"]),
    ("grid too small", _edit("n = 60", "n = 5"), [], ["grid.n", "20"]),
    ("grid as text", _edit("n = 60", 'n = "many"'), [], ["grid.n", "integer"]),
    ("no compute", _edit('compute = ["perturbative"]', ""), [], ["compute", "missing"]),
    ("compute typo", _edit('"perturbative"]', '"perturbativ"]'), [], ["compute", "steady"]),
    ("compute as a string", _edit('["perturbative"]', '"perturbative"'), [], ["compute"]),
    ("no t_qp", _edit("t_qp = 0.9\n", ""), [], ["model.t_qp", "missing"]),
    ("negative t_qp", _edit("t_qp = 0.9", "t_qp = -0.5"), [], ["model.t_qp", "> 0"]),
    ("t_qp at T_c", _edit("t_qp = 0.9", "t_qp = 1.0"), [], ["model.t_qp", "normal state"]),
    ("t_qp in kelvin without t_c", _edit("t_qp = 0.9", 't_qp = "1 K"'), [], ["t_qp", "t_c"]),
    ("t_c in seconds", _edit("tau_in = 1000", 'tau_in = 1000\nt_c = "1 s"'), [],
     ["model.t_c", "kelvin"]),
    ("tau_in zero", _edit("tau_in = 1000", "tau_in = 0"), [], ["model.tau_in", "> 0"]),
    ("tau_in in an energy unit", _edit("tau_in = 1000", 'tau_in = "3 Delta0"'), [],
     ["tau_in", "Delta0", "allowed"]),
    ("bath type missing", _edit('type = "multimode_cavity"\n', ""), [], ["baths.0", "type"]),
    ("bath type typo", _edit("multimode_cavity", "multimode_cavty"), [],
     ["multimode_cavty", "multimode_cavity"]),
    ("bath key typo", _edit("t_cav =", "t_cavity ="), [],
     ["baths.0.t_cavity", "unknown key", "t_cav"]),
    ("bath key missing", _edit('eta = "0.0155 / tau_in"\n', ""), [],
     ["baths.0.eta", "missing", "coupling"]),
    ("negative coupling", _edit('"0.0155 / tau_in"', "-1e-5"), [], ["eta", ">= 0"]),
    ("energy in a time unit", _edit('"3 Delta0"', '"3 ns"'), [], ["omega0", "ns", "allowed"]),
    ("unknown unit", _edit('"3 Delta0"', '"3 Delta"'), [], ["omega0", "Delta"]),
    ("GHz without t_c", _edit('"3 Delta0"', '"200 GHz"'), [], ["omega0", "t_c"]),
    ("a temperature of 1e6", _edit('"0.5 T_qp"', "1e6"), [], ["t_cav", "<="]),
    ("profile on a constant", _edit(
        'type = "multimode_cavity"\nname = "cavity"\nomega0 = "3 Delta0"\nt_cav = "0.5 T_qp"\n'
        'eta = "0.0155 / tau_in"',
        'type = "phonons"\nname = "cavity"\ntau0 = 1e4\nt_ph = "1 T_qp"\n'
        'omega_debye = { profile = "step", after = 5.0 }'), [],
     ["omega_debye", "profile"]),
    ("profile typo", _edit('"0.0155 / tau_in"', '{ profile = "stepp", after = 1e-5 }'), [],
     ["eta", "step"]),
    ("dynamic on a drive", _edit(
        'type = "multimode_cavity"\nname = "cavity"\nomega0 = "3 Delta0"\nt_cav = "0.5 T_qp"\n'
        'eta = "0.0155 / tau_in"',
        'type = "classical_drive"\nname = "cavity"\nomega_d = "1 Delta0"\npower = 1e-6\n'
        "dynamic = { tau_b = 10 }"), [], ["baths.0.dynamic", "dynamic-capable"]),
    ("two baths, one name", BASE.replace("[output]", BASE.split("[grid]\nn = 60\n")[1]
                                         .split("[output]")[0] + "[output]"), [],
     ["two baths share the name", "cavity"]),
    ("sweep of an unknown bath", BASE + SWEEP.replace("cavity.omega0", "cavty.omega0"), [],
     ["cavty.omega0", "cavity"]),
    ("sweep of a non-number", BASE + SWEEP.replace("cavity.omega0", "cavity.name"), [],
     ["cavity.name", "omega0"]),
    ("sweep with text values", BASE + SWEEP.replace("[2.0, 3.0]", '["2 Delta0", "3 Delta0"]'),
     [], ["sweep", "values"]),
    ("sweep without values", BASE + SWEEP.replace("values = [2.0, 3.0], ", ""), [],
     ["sweep", "values"]),
    ("log sweep from zero", BASE + '[sweep]\n"cavity.eta" = { start = 0, stop = 1e-5, num = 3, '
     'spacing = "log" }\n', [], ["log", "start > 0"]),
    ("evolve without [evolve]", _edit('["perturbative"]', '["evolve"]'), [],
     ["evolve", "t_end"]),
    ("evolve ends before it starts", _edit('["perturbative"]', '["evolve"]') +
     "[evolve]\nt_end = -5\n", [], ["evolve.t_end", "after"]),
    ("figure.x not swept", BASE.replace('kind = "none"', 'x = "cavity.eta"'), [],
     ["figure.x", "cavity.eta"]),
    ("--set without =", BASE, ["--set", "grid.n"], ["--set", "KEY=VALUE"]),
    ("--set of an unknown bath", BASE, ["--set", "cavty.eta=1e-5"], ["cavty.eta", "bath"]),
    ("--set of a swept key", BASE + SWEEP, ["--set", "cavity.omega0=2.0"],
     ["cavity.omega0", "sweeps"]),
    ("--quick without [quick]", BASE, ["--quick"], ["[quick]", "--quick"]),
    ("--set grid.n to text", BASE, ["--set", "grid.n=lots"], ["grid.n"]),
]


@pytest.fixture
def run(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(warnings, "showwarning", warnings.showwarning)  # main() replaces it

    def go(text, extra):
        path = tmp_path / "study.toml"
        path.write_text(text)
        out = tmp_path / "out"
        code = main(["run", str(path), "--no-progress", "--output", str(out), *extra])
        captured = capsys.readouterr()
        return code, captured.out, captured.err, out

    return go


def test_there_are_thirty_mistakes_or_more():
    assert len(MISTAKES) >= 30
    assert len({m[0] for m in MISTAKES}) == len(MISTAKES)


@pytest.mark.parametrize("name, text, extra, words", MISTAKES, ids=[m[0] for m in MISTAKES])
def test_a_mistake_exits_2_naming_the_key(run, name, text, extra, words):
    code, out, err, folder = run(text, extra)
    assert code == 2, (name, out, err)
    lines = [x for x in err.splitlines() if x and not x.startswith("warning")]
    assert lines and "error" in lines[0] and "Traceback" not in err, err
    for w in words:
        assert w in err, (name, w, err)
    assert not folder.exists() or not any(folder.iterdir())  # nothing written


def test_the_normal_state_on_purpose_is_allowed(run):
    # [model] allow_normal_state = true: the configuration is accepted; the perturbative
    # formula then says why it has nothing to perturb (a failure, exit 3, never NaN silently)
    text = _edit("tau_in = 1000", "tau_in = 1000\nallow_normal_state = true")
    text = _edit('"3 Delta0"', "2.0", _edit("t_qp = 0.9", "t_qp = 1.2", text))
    code, out, err, folder = run(text, [])
    assert code == 3 and "T_c" in err and "Traceback" not in err
    assert (folder / "m.nc").exists()


def _process(args, cwd):
    return subprocess.Popen(
        [sys.executable, "-m", "cavity_eliashberg", *args], cwd=cwd,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def test_a_few_mistakes_through_the_installed_command(tmp_path):
    """The same refusals from the command itself (a separate process each)."""
    picks = ["bath key typo", "tau_in in an energy unit", "--set of a swept key"]
    running = []
    for name, text, extra, words in (m for m in MISTAKES if m[0] in picks):
        path = tmp_path / f"{len(running)}.toml"
        path.write_text(text)
        args = ["run", str(path), "--output", str(tmp_path / "out"), *extra]
        running.append((name, words, _process(args, tmp_path)))
    running.append(("unknown subcommand", ["invalid choice"], _process(["rnu"], tmp_path)))
    for name, words, p in running:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 2, (name, err)
        assert "Traceback" not in out + err, (name, err)
        for w in words:
            assert w in err, (name, w, err)
