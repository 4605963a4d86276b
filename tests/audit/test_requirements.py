"""requirements files, as pip reads them."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelshield.audit.inputs._common import ParseOptions
from modelshield.audit.inputs.dependency import Dependency, ParsedInput
from modelshield.audit.inputs.markers import Target
from modelshield.audit.inputs.requirements import parse_requirements
from modelshield.core.limits import Limits

LINUX_PY311 = Target("3.11.7", "linux")


def parse(path: Path, **kw: object) -> ParsedInput:
    options = ParseOptions(target=LINUX_PY311, **kw)  # type: ignore[arg-type]
    return parse_requirements(path, str(path), options)


def by_name(result: ParsedInput) -> dict[str, Dependency]:
    return {d.canonical: d for d in result.dependencies}


def test_pins_ranges_hashes_extras_markers_and_continuations(tmp_path: Path) -> None:
    req = tmp_path / "requirements.txt"
    req.write_text(
        "# the model's runtime\n"
        "scikit-learn==1.0.2 --hash=sha256:aaaa \\\n"
        "    --hash=sha256:bbbb\n"
        "Torch[cuda]===2.13.0+cpu  # local build\n"
        "numpy>=1.21,<2 ; python_version >= '3.8'\n"
        "pywin32==306 ; sys_platform == 'win32'\n"
        "pandas\n"
        "--index-url https://example.invalid/simple\n"
        "Flask_Caching ~= 1.9\n"
    )
    result = parse(req)
    deps = by_name(result)
    assert result.errors == ()
    assert list(deps) == ["scikit-learn", "torch", "numpy", "pandas", "flask-caching"]
    assert deps["scikit-learn"].version == "1.0.2" and deps["scikit-learn"].line == 2
    assert deps["torch"].version == "2.13.0+cpu" and deps["torch"].extras == ("cuda",)
    assert deps["numpy"].version is None and deps["numpy"].specifiers == ("<2,>=1.21",)
    assert deps["pandas"].specifiers == ("",)
    assert deps["flask-caching"].line == 9
    assert result.metadata["excluded_by_marker"] == "1"
    # Offsets point at the start of each logical line in the file's bytes.
    assert req.read_bytes()[deps["numpy"].location.offset or 0 :].startswith(b"numpy")


def test_includes_constraints_and_cycles(tmp_path: Path) -> None:
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "common.txt").write_text("requests>=2\n-r ../requirements.txt\n")
    (tmp_path / "constraints.txt").write_text("requests==2.19.0\nnotrequired==1.0\n")
    top = tmp_path / "requirements.txt"
    top.write_text("-r base/common.txt\n--constraint constraints.txt\njoblib==1.1.0\n")
    result = parse(top)
    deps = by_name(result)
    assert result.errors == ()
    assert set(deps) == {"requests", "joblib"}  # constraints add no dependency
    assert deps["requests"].version == "2.19.0"
    assert deps["requests"].evidence["constrained_by"].endswith("constraints.txt:1")
    assert deps["requests"].location.path == str(tmp_path / "base" / "common.txt")
    assert result.metadata["include_cycles"] == "1"


def test_urls_vcs_paths_and_editables(tmp_path: Path) -> None:
    req = tmp_path / "requirements.txt"
    req.write_text(
        "https://files.example/torch-2.0.1-cp311-cp311-linux_x86_64.whl\n"
        "mypkg @ https://files.example/mypkg-0.3.tar.gz\n"
        "git+https://github.com/org/lib.git@v1#egg=lib\n"
        "-e ./local_project\n"
        "./wheels/tokenizers-0.13.3-cp311-cp311-manylinux_2_17_x86_64.whl\n"
    )
    deps = by_name(parse(req))
    assert deps["torch"].version == "2.0.1" and deps["torch"].unauditable is None
    assert deps["mypkg"].version == "0.3"
    assert deps["tokenizers"].version == "0.13.3"
    assert "version-control" in (deps["lib"].unauditable or "")
    editable = [d for d in deps.values() if d.unauditable and "local project" in d.unauditable]
    assert len(editable) == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("numpy=>1.0\n", "invalid requirement"),
        ("-r missing.txt\n", "not found"),
        ("-r https://example.invalid/reqs.txt\n", "remote include"),
        ("flask ==\n", "invalid requirement"),
    ],
)
def test_bad_lines_are_error_records_with_the_line(
    tmp_path: Path, content: str, message: str
) -> None:
    req = tmp_path / "requirements.txt"
    req.write_text("joblib==1.1.0\n" + content)
    result = parse(req)
    (error,) = result.errors
    assert message in error.message
    assert error.message.startswith(f"{req}:2: ")
    assert error.stage == "audit-parse"
    assert [d.canonical for d in result.dependencies] == ["joblib"]  # the rest is still read


def test_include_depth_is_bounded(tmp_path: Path) -> None:
    for i in range(5):
        (tmp_path / f"r{i}.txt").write_text(f"-r r{i + 1}.txt\n")
    (tmp_path / "r5.txt").write_text("numpy==1.0\n")
    result = parse(tmp_path / "r0.txt", limits=Limits(max_nested_depth=3))
    assert any("max_nested_depth" in e.message for e in result.errors)
    deep = parse(tmp_path / "r0.txt")
    assert deep.errors == () and [d.canonical for d in deep.dependencies] == ["numpy"]


def test_environment_variables_are_expanded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCH_VERSION", "2.1.0")
    req = tmp_path / "requirements.txt"
    req.write_text("torch==${TORCH_VERSION}\n")
    allowed = parse(req, expand_env=frozenset({"TORCH_VERSION"}))
    assert by_name(allowed)["torch"].version == "2.1.0"


@pytest.mark.parametrize("data", [b"\xfe\x00garbage", b"numpy==1.0\n" * 10])
def test_unreadable_or_oversized_files(tmp_path: Path, data: bytes) -> None:
    req = tmp_path / "requirements.txt"
    req.write_bytes(data)
    result = parse(req, limits=Limits(max_document_bytes=64))
    assert len(result.errors) == 1
    assert "UTF-8" in result.errors[0].message or "max_document_bytes" in result.errors[0].message


@pytest.mark.parametrize(
    ("encoding", "bom"),
    [
        ("utf-16-le", b"\xff\xfe"),  # what PowerShell's `pip freeze > requirements.txt` writes
        ("utf-16-be", b"\xfe\xff"),
        ("utf-32-be", b"\x00\x00\xfe\xff"),
        ("utf-8", b"\xef\xbb\xbf"),
    ],
)
def test_a_byte_order_mark_names_the_encoding_as_pip_reads_it(
    tmp_path: Path, encoding: str, bom: bytes
) -> None:
    from pip._internal.utils.encoding import auto_decode  # the consumer's own decoder

    text = "numpy==1.26.4\r\nscikit-learn==1.5.0 ; python_version >= '3.9'\r\ntorch>=2\r\n"
    req = tmp_path / "requirements.txt"
    req.write_bytes(bom + text.encode(encoding))
    assert auto_decode(req.read_bytes()) == text  # pip reads these requirements...
    result = parse(req)
    assert result.errors == ()  # ...and so does the audit, line by line
    deps = by_name(result)
    assert list(deps) == ["numpy", "scikit-learn", "torch"]
    assert deps["torch"].line == 3
    # Offsets count the file's own bytes: the third line starts after the BOM and two lines.
    second = len(bom) + len("numpy==1.26.4\r\n".encode(encoding))
    assert deps["scikit-learn"].location.offset == second


def test_a_coding_declaration_names_the_encoding_as_pip_reads_it(tmp_path: Path) -> None:
    from pip._internal.utils.encoding import auto_decode

    data = "# -*- coding: latin-1 -*-\nnumpy==1.26.4  # café\n".encode("latin-1")
    req = tmp_path / "requirements.txt"
    req.write_bytes(data)
    assert "café" in auto_decode(data)
    result = parse(req)
    assert result.errors == () and [d.canonical for d in result.dependencies] == ["numpy"]


def test_lines_split_and_join_as_pip_splits_and_joins_them(tmp_path: Path) -> None:
    """pip splits with str.splitlines (form feeds and Unicode line separators included), joins
    backslash continuations unless the line is a comment, and reads options by unique prefix."""
    import warnings

    with warnings.catch_warnings():  # pip's own imports warn about pkg_resources
        warnings.simplefilter("ignore", DeprecationWarning)
        from pip._internal.network.session import PipSession
        from pip._internal.req.req_file import parse_requirements as pip_parse

    (tmp_path / "c.txt").write_text("numpy==1.26.4\n")
    req = tmp_path / "requirements.txt"
    req.write_text(
        "torch==2.1.0\x0cjoblib==1.2.0\u2028requests \\\n  ==2.31.0\n"
        "# a comment \\\nflask==3.0.0\n--constr c.txt\nnumpy\n"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        theirs = list(pip_parse(str(req), session=PipSession()))
    ours = parse(req)
    assert ours.errors == ()
    assert [d.display() for d in ours.dependencies[:4]] == [
        r.requirement.replace(" ", "") for r in theirs[:4]
    ]
    assert [(r.requirement, r.constraint) for r in theirs[4:]] == [
        ("numpy==1.26.4", True),
        ("numpy", False),
    ]
    assert ours.dependencies[4].display() == "numpy==1.26.4"  # the constraint pins it


@pytest.mark.parametrize(
    "content",
    [
        "--pre numpy\n",  # a word among options: pip leaves it unused
        "-x foo\n",  # an unknown short option: pip fails
        "--re x.txt\n",  # an ambiguous prefix (--requirement, --require-hashes): pip fails
        "--bogus\n",
        "numpy --frob\n",
        "-rreq2.txt\n",  # a short option with its value attached
        "--requirement=req2.txt --pre\n",
        '-r "req 3.txt"\n',  # shlex quoting
        "--hash\n",
    ],
)
def test_option_lines_are_read_as_pip_reads_them(tmp_path: Path, content: str) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from pip._internal.exceptions import RequirementsFileParseError
        from pip._internal.network.session import PipSession
        from pip._internal.req.req_file import parse_requirements as pip_parse

    (tmp_path / "req2.txt").write_text("joblib==1.2.0\n")
    (tmp_path / "req 3.txt").write_text("torch==2.1.0\n")
    req = tmp_path / "requirements.txt"
    req.write_text(content)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            theirs = [r.requirement for r in pip_parse(str(req), session=PipSession())]
    except RequirementsFileParseError:
        theirs = None
    ours = parse(req)
    if theirs is None:
        assert ours.errors, ours
    else:
        assert ours.errors == ()
        assert [d.display() for d in ours.dependencies] == theirs
