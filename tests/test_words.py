"""What the output says, in both languages (issue #16): warnings, plurals, ordinals, complete Chinese, widths."""

import re
import subprocess
import sys

import pytest

import vramscope
from vramscope.present.table import render_estimate, render_fit


def cli(*args):
    p = subprocess.run([sys.executable, "-m", "vramscope", *args, "--no-hub"], capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


def test_seq_beyond_trained_context_is_a_warning_line():
    e = vramscope.estimate("llama-3-8b", seq=8193, gpus=["h100"])
    out = render_estimate(e)
    warn = " ".join(out[out.index("warning:"):out.index("Assumptions:")].split())
    assert "8,193 tokens is beyond" in warn and "8,192" in warn and "factor 1.01" in warn and "not memory" in warn
    assert "beyond" not in out[out.index("Assumptions:"):]  # said once, as a warning
    assert "警告：" in render_estimate(e, "zh")
    rc, out, _ = cli("fit", "llama-3-8b", "--seq", "8193", "--gpu", "h100")
    assert rc == 0 and "warning: 8,193 tokens is beyond" in " ".join(out.split())
    rc, out, err = cli("estimate", "bert-base-uncased", "--seq", "100000")
    assert rc == 2 and "512" in err and "Traceback" not in err
    assert "warning" not in render_estimate(vramscope.estimate("llama-3-8b", seq=8192))
