"""The shape of the code: no import cycles in mlp/ (module-level or inside functions), mlp_kernels
independent of mlp (the constants both need agree), and no function over ~100 lines without a
stated reason."""

import ast
import re
from pathlib import Path

from tests.helpers import REPO_ROOT

PACKAGE = REPO_ROOT / "mlp"
LONG_FUNCTION = 100
# Functions allowed past LONG_FUNCTION lines, each with its reason.
TABLE_REASON = "a data table: one Option(...) literal per training option, no control flow"
LONG_ALLOWED = {
    "mlp/options.py:_training_options": TABLE_REASON,
    "mlp/options.py:_loop_options": TABLE_REASON,
    # kept true by test_fit_is_long_only_by_its_signature_and_docstring
    "mlp/training.py:fit": "one line per keyword in the signature and a docstring that explains them; "
    "the body, which prepares and runs, is under 30 lines",
}


def module_name(path, root=PACKAGE, package="mlp"):
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join([package, *parts])


def modules(root=PACKAGE, package="mlp"):
    return {module_name(path, root, package): path for path in sorted(root.rglob("*.py"))}


def _resolve(node, current, is_package, known):
    """The modules of `known` that an import node names (relative imports resolved)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names if alias.name in known]
    base = current if is_package else current.rsplit(".", 1)[0]
    for _ in range(max(node.level - 1, 0)):
        base = base.rsplit(".", 1)[0]
    target = (f"{base}.{node.module}" if node.module else base) if node.level else (node.module or "")
    found = [f"{target}.{alias.name}" for alias in node.names if f"{target}.{alias.name}" in known]
    if target in known and len(found) < len(node.names):  # names taken from the module itself
        found.append(target)
    return found


def import_graph(root=PACKAGE, package="mlp"):
    """{module: set of modules it imports}, counting every import statement anywhere in the file except
    those under `if TYPE_CHECKING:` (annotations only, never run)."""
    known = modules(root, package)
    graph = {}
    for name, path in known.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        edges = set()
        typing_only = {
            id(inner)
            for node in ast.walk(tree)
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for inner in ast.walk(node)
        }
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in typing_only:
                edges.update(_resolve(node, name, path.name == "__init__.py", known))
        edges.discard(name)
        graph[name] = edges
    return graph


def find_cycle(graph):
    """One import cycle as a list of modules [a, b, ..., a], or None."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_no_import_cycles_in_mlp():
    graph = import_graph()
    assert len(graph) > 20 and "mlp.engines.generic" in graph  # the graph really was built
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_a_cycle_through_a_function_level_import_is_seen(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "model.py").write_text("from . import saving\n")
    (package / "saving.py").write_text("def load():\n    from .model import Model\n")
    assert find_cycle(import_graph(package, "pkg")) == ["pkg.model", "pkg.saving", "pkg.model"]


def test_kernels_do_not_import_mlp():
    for path in (REPO_ROOT / "kernels").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                assert not any(a.name.split(".")[0] == "mlp" for a in node.names), path
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                assert (node.module or "").split(".")[0] != "mlp", path


def module_constant(path, name):
    """The literal value of a module-level `name = literal` in the file at path (no import needed)."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == [name]:
            return ast.literal_eval(node.value)
    raise AssertionError(f"{name} is not assigned in {path}")


def test_the_leaky_relu_slope_is_the_same_everywhere():
    """mlp_kernels cannot import mlp and mlp cannot require Numba, so each keeps its own copy of the
    slope (as the C++ port does): they agree."""
    slope = module_constant(PACKAGE / "activations.py", "LEAKY_SLOPE")
    assert module_constant(REPO_ROOT / "kernels" / "_layers.py", "LEAKY_SLOPE") == slope
    sources = REPO_ROOT / "cpp" / "src"
    if sources.is_dir():  # the C++ port travels with the checkout and the sdist, not the wheel
        cpp = [
            float(value)
            for path in sorted(sources.rglob("*.[ch]pp"))
            for value in re.findall(r"\bkLeakySlope\s*=\s*([0-9.eE+-]+)", path.read_text())
        ]
        assert cpp and all(value == slope for value in cpp), cpp


def test_the_batch_norm_eps_is_the_same_in_python_and_the_kernels():
    """The kernels keep their own copy of batch normalisation's eps (they cannot import mlp)."""
    eps = module_constant(PACKAGE / "layers.py", "BATCH_NORM_EPS")
    assert module_constant(REPO_ROOT / "kernels" / "_norm.py", "BATCH_NORM_EPS") == eps


def test_only_the_plumbing_module_imports_the_array_api_helpers():
    """array_api_compat and array_api_extra are imported by mlp/_array_api.py alone; everything else
    takes the namespace and the helpers from it."""
    plumbing = {"array_api_compat", "array_api_extra"}
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "_array_api.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            assert not any(name.split(".")[0] in plumbing for name in names), path


def long_functions(root=PACKAGE):
    found = {}
    for path in sorted(Path(root).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > LONG_FUNCTION:
                    found[f"{path.relative_to(REPO_ROOT)}:{node.name}"] = length
    return found


def test_no_function_over_100_lines_without_a_reason():
    too_long = {name: n for name, n in long_functions().items() if name not in LONG_ALLOWED}
    assert too_long == {}, f"split these or give a reason in LONG_ALLOWED: {too_long}"


def test_no_kernel_function_over_100_lines_without_a_reason():
    too_long = {
        name: n for name, n in long_functions(REPO_ROOT / "kernels").items() if name not in LONG_ALLOWED
    }
    assert too_long == {}, f"split these or give a reason in LONG_ALLOWED: {too_long}"


CPP_SOURCES = REPO_ROOT / "cpp" / "src"
_CPP_SKIPPED = re.compile(r"//[^\n]*|/\*.*?\*/|\"(?:\\.|[^\"\\\n])*\"|'(?:\\.|[^'\\\n])*'", re.S)


_CPP_NOT_SIGNATURE = re.compile(r"\s*$|\s*template\b|\s*(public|private|protected)\s*:\s*$")


def _cpp_code(text):
    """C++ text with comments, string and character literals and preprocessor lines blanked out
    (newlines kept, so that every offset keeps its line)."""
    text = _CPP_SKIPPED.sub(lambda m: re.sub(r"[^\n]", " ", m.group()), text)
    return re.sub(r"(?m)^[ \t]*#.*$", "", text)


def _matching_brace(code, i):
    depth = 0
    for j in range(i, len(code)):
        depth += {"{": 1, "}": -1}.get(code[j], 0)
        if depth == 0:
            return j
    raise AssertionError("unbalanced braces")


def cpp_function_lengths(text):
    """{name: lines} of the functions defined in C++ source text, by matching braces. A `{` met in a
    namespace or class scope opens a function when the text before it (since the last `;`, `{` or
    `}`, `template <...>` aside) holds a `(`; the function runs from the first line of that text
    (template lines and access labels aside) to the matching `}`. Namespaces, classes and structs are entered, other
    braces (tables, enums) skipped."""
    code = _cpp_code(text)
    lengths, i, start = {}, 0, 0
    while i < len(code):
        if code[i] in ";}":
            start = i + 1
        elif code[i] == "{":
            header = code[start:i]
            plain = re.sub(r"\btemplate\s*<[^<>]*(?:<[^<>]*>[^<>]*)*>", "", header)
            scope = re.search(r"\b(namespace|class|struct|union)\b", plain.split("(")[0])
            if scope and "=" not in plain:
                start = i = i + 1  # look inside
                continue
            end = _matching_brace(code, i)
            if "(" in plain and not scope:
                lines = header.split("\n")
                first = next((n for n, line in enumerate(lines) if not _CPP_NOT_SIGNATURE.match(line)), 0)
                words = re.findall(r"[\w:~<>]+", plain.split("(")[0])
                name = words[-1] if words else "?"
                length = code.count("\n", start, end) - first + 1
                lengths[name] = max(length, lengths.get(name, 0))
            i = start = end + 1
            continue
        i += 1
    return lengths


def long_cpp_functions(root=CPP_SOURCES):
    found = {}
    for path in sorted(Path(root).glob("*.cpp")):
        for name, length in cpp_function_lengths(path.read_text()).items():
            if length > LONG_FUNCTION:
                found[f"{path.relative_to(REPO_ROOT).as_posix()}:{name}"] = length
    return found


def test_no_cpp_function_over_100_lines_without_a_reason():
    if not CPP_SOURCES.exists():  # the C++ port travels with the checkout and the sdist, not the wheel
        return
    too_long = {name: n for name, n in long_cpp_functions().items() if name not in LONG_ALLOWED}
    assert too_long == {}, f"split these or give a reason in LONG_ALLOWED: {too_long}"


def test_the_cpp_line_count_finds_functions_and_only_them():
    body = "  x += 1;  // {\n" * 98
    text = (
        '// a file\nnamespace mlp {\nnamespace {\nconst char* const kNames[] = {"a{", "b"};\n}  // namespace\n'
        "template <class T>\nclass Box {\n public:\n  int get() const { return 1; }\n};\n"
        f"template <class T>\nint long_one(int x,\n             int y) {{\n{body}  return x;\n}}\n"
        "#define M(T) template int long_one<T>(int, int);\n"
        "void Box::set(int v) {\n  if (v) {\n    auto f = [](int z) { return z; };\n  }\n}\n}  // namespace mlp\n"
    )
    assert cpp_function_lengths(text) == {"get": 1, "long_one": 102, "Box::set": 5}


NPZ_READER = "mlp/_npz.py"


def npz_parsing(root=PACKAGE):
    """[(file, what)] of every module but NPZ_READER that reads zip archives or .npy headers itself:
    imports zipfile or numpy.lib.format, or calls np.load or ast.literal_eval."""
    found = []
    for path in sorted(Path(root).rglob("*.py")):
        name = path.relative_to(root.parent).as_posix()
        if name == NPZ_READER:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found += [(name, a.name) for a in node.names if a.name.split(".")[0] == "zipfile"]
                found += [(name, a.name) for a in node.names if a.name.startswith("numpy.lib.format")]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                module = node.module or ""
                if module.split(".")[0] == "zipfile" or module.startswith("numpy.lib.format"):
                    found.append((name, module))
                if module == "numpy.lib" and any(a.name == "format" for a in node.names):
                    found.append((name, "numpy.lib.format"))
                if module == "ast" and any(a.name == "literal_eval" for a in node.names):
                    found.append((name, "ast.literal_eval"))
            elif isinstance(node, ast.Attribute):
                base = node.value
                if node.attr == "format" and isinstance(base, ast.Attribute) and base.attr == "lib":
                    found.append((name, "numpy.lib.format"))
                if node.attr == "load" and isinstance(base, ast.Name) and base.id in ("np", "numpy"):
                    found.append((name, "np.load"))
                if node.attr == "literal_eval":
                    found.append((name, "ast.literal_eval"))
    return found


def test_only_the_npz_reader_parses_zip_files_and_npy_headers():
    """Model files, checkpoints and Keras-style data sets are all read by mlp/_npz.py (its bounds, its
    checks); no other module of mlp/ opens a zip archive or parses a .npy header."""
    assert npz_parsing() == []
    graph = import_graph()
    for reader in ("mlp.model_file", "mlp.datasets.keras_npz", "mlp.datasets.convert"):
        assert "mlp._npz" in graph[reader], reader
    assert "mlp._files" in graph["mlp._npz"]  # its one safe opener of input files


def test_the_npz_check_sees_a_second_reader(tmp_path):
    package = tmp_path / "mlp"
    package.mkdir()
    (package / "_npz.py").write_text("import zipfile\nimport ast\nast.literal_eval('1')\n")
    (package / "other.py").write_text(
        "import zipfile\nimport numpy as np\nfrom numpy.lib import format\nnp.lib.format.read_magic\nnp.load\n"
    )
    assert sorted(npz_parsing(package)) == [
        ("mlp/other.py", "np.load"),
        ("mlp/other.py", "numpy.lib.format"),
        ("mlp/other.py", "numpy.lib.format"),
        ("mlp/other.py", "zipfile"),
    ]


def test_fit_is_long_only_by_its_signature_and_docstring():
    tree = ast.parse((PACKAGE / "training.py").read_text())
    fit = next(node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == "fit")
    body = fit.body[1:] if isinstance(fit.body[0], ast.Expr) else fit.body  # after the docstring
    assert body[-1].end_lineno - body[0].lineno + 1 < 30
