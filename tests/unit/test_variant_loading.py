"""The variant contract is checked at load time, with messages that name the module and the fix."""

from __future__ import annotations

import textwrap

import pytest

from fpufuzz import InvalidVariant, UnknownVariant, variant

HEADER = '''"""x86/fpu: a patch under review

Author: A Developer <a@example.org>
Date: 2026-11-26
Link: https://lore.kernel.org/lkml/example/
"""
'''


def write(tmp_path, body: str, name: str = "my_patch"):
    path = tmp_path / f"{name}.py"
    path.write_text(HEADER + textwrap.dedent(body))
    return str(path)


def test_the_five_shipped_variants_load():
    assert {"original", "exec_invalidate_last_cpu", "exec_invalidate_both", "always_restore",
            "always_valid"} <= set(variant.names())
    for name in variant.names():
        v = variant.load(name)
        assert v.subject and "Author" in v.headers


def test_a_variant_overrides_only_what_its_patch_changes():
    fix = variant.load("exec_invalidate_last_cpu")
    assert list(fix.overrides) == ["fpu_reset_fpregs"] and fix.base is None
    control = variant.load("always_valid")
    assert control.functions["fpu_reset_fpregs"] is fix.overrides["fpu_reset_fpregs"]  # BASE applies


def test_a_good_file_variant_loads(tmp_path):
    v = variant.load_file(write(tmp_path, '''
        EXPECT = "clean"
        BASE = "exec_invalidate_last_cpu"

        def fpu__drop(k, fpu):
            k.preempt_disable()
            if fpu == k.current.thread.fpu:
                k.fpregs_deactivate(fpu)
            k.preempt_enable()
    '''))
    assert list(v.overrides) == ["fpu__drop"] and v.expect == "clean"


def test_unknown_function_is_refused_with_the_closest_names(tmp_path):
    with pytest.raises(InvalidVariant) as e:
        variant.load_file(write(tmp_path, "def fpu_reset_fpreg(k):\n    pass\n"))
    assert "my_patch.py" in str(e.value) and "fpu_reset_fpregs" in str(e.value) and "@new" in str(e.value)


def test_wrong_signature_is_refused(tmp_path):
    with pytest.raises(InvalidVariant, match=r"fpu__drop\(k\) does not match the kernel's fpu__drop\(k, fpu\)"):
        variant.load_file(write(tmp_path, "def fpu__drop(k):\n    pass\n"))


def test_new_functions_must_be_declared(tmp_path):
    v = variant.load_file(write(tmp_path, '''
        from fpufuzz import new

        @new
        def switch_fpu(k, old, cpu):
            pass
    '''))
    assert list(v.added) == ["switch_fpu"]
    with pytest.raises(InvalidVariant, match="already exists"):
        variant.load_file(write(tmp_path, '''
            from fpufuzz import new

            @new
            def fpu__drop(k, fpu):
                pass
        ''', name="other"))


def test_missing_metadata_is_refused(tmp_path):
    path = tmp_path / "bare.py"
    path.write_text('"""Subject only"""\n')
    with pytest.raises(InvalidVariant, match="lacks Author, Date, Link or Commit"):
        variant.load_file(str(path))


def test_bad_expect_is_refused(tmp_path):
    with pytest.raises(InvalidVariant, match="EXPECT = 'broken'"):
        variant.load_file(write(tmp_path, 'EXPECT = "broken"\n'))
    with pytest.raises(InvalidVariant, match="violates <invariant>"):
        variant.load_file(write(tmp_path, 'EXPECT = "violates no-such-invariant"\n', name="b"))


def test_import_errors_name_the_file(tmp_path):
    with pytest.raises(InvalidVariant, match="my_patch.py:.*does not parse"):
        variant.load_file(write(tmp_path, "def (:\n"))
    with pytest.raises(InvalidVariant, match="failed to import: ZeroDivisionError"):
        variant.load_file(write(tmp_path, "1/0\n", name="z"))


def test_base_cycles_and_unknown_bases_are_refused(tmp_path):
    with pytest.raises(InvalidVariant, match="cycle"):
        variant.load_file(write(tmp_path, 'BASE = "my_patch"\n'))
    with pytest.raises(UnknownVariant, match="no variant named 'nope'"):
        variant.load_file(write(tmp_path, 'BASE = "nope"\n', name="c"))


def test_unknown_variant_suggests_close_names():
    with pytest.raises(UnknownVariant, match="did you mean original"):
        variant.load("orignal")
