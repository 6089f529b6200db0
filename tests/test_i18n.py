import re
import string

import vramscope.api  # noqa: F401
import vramscope.plan  # noqa: F401
import vramscope.trace.preflight  # noqa: F401  (modules that keep their messages beside their code register them on import)
import vramscope.trace.estimator  # noqa: F401
import vramscope.cli  # noqa: F401
import vramscope.serve  # noqa: F401
import vramscope.workload  # noqa: F401
import vramscope.present.svg  # noqa: F401
import vramscope.web  # noqa: F401
from vramscope.i18n import MESSAGES, detect_lang, t


def test_every_message_in_both_languages_with_same_placeholders():
    fmt = string.Formatter()
    for key, entry in MESSAGES.items():
        assert set(entry) == {"en", "zh"}, key
        fields = [{f for _, f, _, _ in fmt.parse(entry[lang]) if f} for lang in ("en", "zh")]
        assert fields[0] == fields[1], key


def test_chinese_messages_are_chinese():
    for key, entry in MESSAGES.items():
        if re.search(r"[A-Za-z]{4,}", entry["en"]) and key not in ("a_note",):
            assert entry["zh"] != entry["en"], key


def test_detect_lang(monkeypatch):
    for var in ("VRAMSCOPE_LANG", "LC_ALL", "LC_MESSAGES", "LANG"):
        monkeypatch.delenv(var, raising=False)
    assert detect_lang() == "en"
    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    assert detect_lang() == "zh"
    assert detect_lang("en") == "en"
    monkeypatch.setenv("VRAMSCOPE_LANG", "en")
    assert detect_lang() == "en"


def test_used_keys_exist():
    import pathlib

    src = pathlib.Path(__file__).resolve().parent.parent / "src" / "vramscope"
    used = set()
    for path in src.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        used |= set(re.findall(r'(?:VramscopeError|Assumption|Text)\(\s*"([a-z_0-9]+)"', text))
        used |= set(re.findall(r'\bt\(\s*"([a-z_0-9]+)"', text))
    missing = sorted(k for k in used if k not in MESSAGES)
    assert not missing, missing
    assert t("gpu_fits", "zh") == "可以运行"
