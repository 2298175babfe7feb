"""Which diagnostic codes the source of protocode can emit, found by reading it with `ast`.

A code enters a `Diagnostic` as its first argument (or ``code=``). It gets there as a string
literal, or through a chain this scan follows: a helper's parameter (``self.fail(code, …)``,
``ProtocodeError.at(code, …)``, a nested ``add(record, field, code, message)``), which makes
every call of that helper a place a code enters; a local or module variable; a conditional
expression; an f-string of resolvable parts; a dict or list of codes indexed or iterated
(``CODES[kind]``, ``for path, code, message in problems`` over tuples appended to
``problems``); an exception's attribute (``exc.code``, set from its constructor's parameter,
default included). A code that reaches a `Diagnostic` any other way is reported as
unresolved, with its place, so the scan never passes by not seeing a code.

A code copied from another diagnostic (``d.code`` of a diagnostic already made) is not a new
code; the scan counts it as passed through.
"""

from __future__ import annotations

import ast
import functools
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef
# A callable a code can be passed to: a function, or a dataclass (its fields are parameters).
Callee = FunctionNode | ast.ClassDef
Scope = FunctionNode | ast.Lambda | ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp

# The one constructor every code ends in; its `code` field is the root of the scan.
DIAGNOSTIC = ("protocode.core.errors", "Diagnostic")


@dataclass(frozen=True, slots=True)
class Site:
    """A place in the source: module path and line."""

    path: str
    line: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}"


@dataclass(slots=True)
class Found:
    """What one expression in a code position can be."""

    values: dict[str, set[Site]] = field(default_factory=dict)
    params: set[tuple[int, str]] = field(default_factory=set)  # (id of function node, name)
    unresolved: set[tuple[Site, str]] = field(default_factory=set)

    def add(self, other: Found) -> None:
        """Merge `other` into this."""
        for value, sites in other.values.items():
            self.values.setdefault(value, set()).update(sites)
        self.params |= other.params
        self.unresolved |= other.unresolved


@dataclass(slots=True)
class Module:
    """One parsed module with the indexes the scan looks names up in."""

    name: str
    path: str
    tree: ast.Module
    parents: dict[ast.AST, ast.AST]
    defs: dict[str, list[FunctionNode]]
    classes: dict[str, ast.ClassDef]
    imports: dict[str, tuple[str, str]]  # local name -> (module, name)
    globals: dict[str, list[ast.expr]]


def _module(name: str, path: str, tree: ast.Module) -> Module:
    parents: dict[ast.AST, ast.AST] = {}
    defs: dict[str, list[FunctionNode]] = {}
    classes: dict[str, ast.ClassDef] = {}
    imports: dict[str, tuple[str, str]] = {}
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            parents[child] = node
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            defs.setdefault(node.name, []).append(node)
        elif isinstance(node, ast.ClassDef):
            classes[node.name] = node
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                imports[alias.asname or alias.name] = (node.module, alias.name)
    module_globals: dict[str, list[ast.expr]] = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign):
            for target in stmt.targets:
                if isinstance(target, ast.Name):
                    module_globals.setdefault(target.id, []).append(stmt.value)
        elif (
            isinstance(stmt, ast.AnnAssign)
            and stmt.value is not None
            and isinstance(stmt.target, ast.Name)
        ):
            module_globals.setdefault(stmt.target.id, []).append(stmt.value)
    return Module(name, path, tree, parents, defs, classes, imports, module_globals)


def _params(fn: Callee | ast.Lambda) -> list[str]:
    if isinstance(fn, ast.ClassDef):
        return list(_fields(fn))
    return [a.arg for a in (*fn.args.posonlyargs, *fn.args.args)]


@functools.cache
def _fields(cls: ast.ClassDef) -> dict[str, ast.AnnAssign]:
    """The fields of a dataclass or named tuple, in order (empty for other classes)."""
    decorators = {ast.unparse(d.func if isinstance(d, ast.Call) else d) for d in cls.decorator_list}
    bases = {ast.unparse(b) for b in cls.bases}
    if not ({"dataclass", "dataclasses.dataclass"} & decorators or "NamedTuple" in bases):
        return {}
    return {
        stmt.target.id: stmt
        for stmt in cls.body
        if isinstance(stmt, ast.AnnAssign)
        and isinstance(stmt.target, ast.Name)
        and "ClassVar" not in ast.unparse(stmt.annotation)
    }


def _all_params(fn: FunctionNode | ast.Lambda) -> list[str]:
    args = fn.args
    names = [*_params(fn), *(a.arg for a in args.kwonlyargs)]
    names += [a.arg for a in (args.vararg, args.kwarg) if a is not None]
    return names


def _default(fn: Callee, name: str) -> ast.expr | None:
    if isinstance(fn, ast.ClassDef):
        field_ = _fields(fn).get(name)
        return field_.value if field_ is not None else None
    positional = _params(fn)
    if name in positional:
        i = positional.index(name) - (len(positional) - len(fn.args.defaults))
        return fn.args.defaults[i] if i >= 0 else None
    for arg, default in zip(fn.args.kwonlyargs, fn.args.kw_defaults, strict=True):
        if arg.arg == name:
            return default
    return None


def _decorators(fn: FunctionNode) -> set[str]:
    return {d.id for d in fn.decorator_list if isinstance(d, ast.Name)}


def _skipped(fn: FunctionNode, module: Module) -> int:
    """How many leading parameters a call of `fn` through an object does not pass."""
    method = isinstance(module.parents.get(fn), ast.ClassDef)
    return 1 if method and "staticmethod" not in _decorators(fn) else 0


class CodeScan:
    """The codes the modules under a source root can put in a `Diagnostic`."""

    def __init__(self, src: Path) -> None:
        self.modules: dict[str, Module] = {}
        for path in sorted(src.rglob("*.py")):
            parts = list(path.relative_to(src.parent).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            name = ".".join(parts)
            shown = path.relative_to(src.parent).as_posix()
            tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
            self.modules[name] = _module(name, shown, tree)
        self.module_of: dict[int, Module] = {}
        self.functions: dict[int, Callee] = {}
        for module in self.modules.values():
            for node in ast.walk(module.tree):
                self.module_of[id(node)] = module
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                    self.functions[id(node)] = node
        root_module, root_name = DIAGNOSTIC
        root = self.modules[root_module].classes[root_name]
        # Parameters and fields through which a code reaches a Diagnostic: (id of callee,
        # name); the root is Diagnostic's own field.
        self.sinks: set[tuple[int, str]] = {(id(root), "code")}
        self.codes: dict[str, set[Site]] = {}
        self._fill_cache: dict[str, dict[str, list[ast.AST]]] = {}
        self._callee_cache: dict[int, list[tuple[Callee, int]]] = {}
        self._binding_cache: dict[tuple[int, str], list[ast.AST]] = {}
        self._calls = [
            (node, module)
            for module in self.modules.values()
            for node in ast.walk(module.tree)
            if isinstance(node, ast.Call)
        ]
        self._caller_index: dict[int, list[tuple[ast.Call, Module]]] | None = None
        self._caller_index = self._index_callers()
        self.unresolved: set[tuple[Site, str]] = set()
        self._run()

    # ---- the fixed point: every call of a function with a code parameter is a code site

    def _run(self) -> None:
        while True:
            found = Found()
            for node, module in self._calls:
                for expr, context in self._code_arguments(node, module):
                    found.add(self._eval(expr, context))
            for fn_id, name in sorted(self.sinks):
                fn = self.functions[fn_id]
                default = _default(fn, name)
                if default is not None:
                    found.add(self._eval(default, self.module_of[fn_id]))
            new = found.params - self.sinks
            if not new:
                self.codes = found.values
                self.unresolved = found.unresolved
                return
            self.sinks |= new

    def _code_arguments(self, call: ast.Call, module: Module) -> Iterator[tuple[ast.expr, Module]]:
        """The arguments of `call` that are codes (with the module they are read in)."""
        if self._is_replace(call, module):
            for keyword in call.keywords:
                if keyword.arg == "code":
                    yield keyword.value, module
            return
        for target, skipped in self._callees(call.func, module):
            params = _params(target)
            positions = {
                name: (params.index(name) - skipped if name in params else -1)
                for fn_id, name in self.sinks
                if fn_id == id(target)
            }
            for name, index in positions.items():
                expr = self._argument(call, name, index)
                if expr is not None:
                    yield expr, module

    @staticmethod
    def _argument(call: ast.Call, name: str, index: int) -> ast.expr | None:
        for keyword in call.keywords:
            if keyword.arg == name:
                return keyword.value
        positional = list(itertools.takewhile(lambda a: not isinstance(a, ast.Starred), call.args))
        if 0 <= index < len(positional):
            return positional[index]
        return None

    def _is_replace(self, call: ast.Call, module: Module) -> bool:
        func = call.func
        if isinstance(func, ast.Attribute):
            return (
                func.attr == "replace"
                and isinstance(func.value, ast.Name)
                and func.value.id == "dataclasses"
            )
        return isinstance(func, ast.Name) and module.imports.get(func.id) == (
            "dataclasses",
            "replace",
        )

    # ---- what a call calls

    def _callees(self, func: ast.expr, module: Module) -> list[tuple[Callee, int]]:
        """The functions `func` may name, each with how many leading parameters the call
        does not pass (``self``, ``cls``)."""
        key = id(func)
        if self._caller_index is None:
            return list(self._find_callees(func, module, 0))
        if key not in self._callee_cache:
            self._callee_cache[key] = list(self._find_callees(func, module, 0))
        return self._callee_cache[key]

    def _find_callees(
        self, func: ast.expr, module: Module, depth: int
    ) -> Iterator[tuple[Callee, int]]:
        if depth > 5:
            return
        if isinstance(func, ast.Attribute):
            yield from self._attribute_callees(func, module, depth)
        if not isinstance(func, ast.Name):
            return
        for scope in self._scopes(func, module):
            if isinstance(scope, ast.FunctionDef | ast.AsyncFunctionDef):
                if func.id in _all_params(scope):
                    # A callable passed in (``report(code, …)``): what the callers pass.
                    if self._caller_index is None:
                        return  # still indexing the calls
                    for call, caller in self._callers(scope):
                        params = _params(scope)
                        skipped = _skipped(scope, module)
                        index = params.index(func.id) - skipped if func.id in params else -1
                        arg = self._argument(call, func.id, index)
                        if arg is not None:
                            yield from self._find_callees(arg, caller, depth + 1)
                    return
                local = [
                    b.value
                    for b in self._bindings(scope, func.id, module)
                    if isinstance(b, ast.Assign)
                ]
                if local:
                    for value in local:
                        yield from self._find_callees(value, module, depth + 1)
                    return
        resolved = self._global(func.id, module)
        if resolved is None:
            return
        owner, name = resolved
        if name in owner.classes:
            cls = owner.classes[name]
            inits = list(self._methods(owner, cls, "__init__"))
            if _fields(cls) and not inits:
                yield cls, 0
            for init in inits:
                yield init, 1
        else:
            for fn in owner.defs.get(name, []):
                if not isinstance(owner.parents.get(fn), ast.ClassDef):
                    yield fn, 0

    def _index_callers(self) -> dict[int, list[tuple[ast.Call, Module]]]:
        """The calls of each function in the source (not those made through a callable
        parameter: the index is what finds those)."""
        index: dict[int, list[tuple[ast.Call, Module]]] = {}
        for node, module in self._calls:
            for target, _ in self._callees(node.func, module):
                index.setdefault(id(target), []).append((node, module))
        return index

    def _callers(self, fn: FunctionNode) -> list[tuple[ast.Call, Module]]:
        """The calls of `fn` in the source."""
        assert self._caller_index is not None
        return self._caller_index.get(id(fn), [])

    def _attribute_callees(
        self, func: ast.Attribute, module: Module, depth: int
    ) -> Iterator[tuple[Callee, int]]:
        """What ``x.name(…)`` may call: for ``self``, the method of the class the call is in
        (through its bases) or the callable an attribute of it holds (``self.error =
        tree.error``); for a class name, its method; else a method of a class of this module
        or of a class it imports, or a function of this module held in an attribute
        (``check.explain(cells)``)."""
        receiver, attr = func.value, func.attr
        if isinstance(receiver, ast.Name) and receiver.id in ("self", "cls"):
            cls = self._enclosing_class(func, module)
            if cls is not None:
                methods = list(self._methods(module, cls, attr))
                for method in methods:
                    yield method, _skipped(method, self.module_of[id(method)])
                held = _self_assignments(cls).get(attr, [])
                for value in held:
                    if isinstance(value, ast.Attribute) and depth < 5:
                        yield from self._attribute_callees(value, module, depth + 1)
                    elif isinstance(value, ast.Name):
                        yield from self._callees(value, module)
                if methods or held:
                    return
        if isinstance(receiver, ast.Name):
            resolved = self._global(receiver.id, module)
            if resolved is not None and resolved[1] in resolved[0].classes:
                owner, name = resolved
                for method in self._methods(owner, owner.classes[name], attr):
                    yield method, _skipped(method, self.module_of[id(method)])
                return
        for fn in module.defs.get(attr, []):
            yield fn, _skipped(fn, module)
        for name in module.imports:
            resolved = self._global(name, module)
            if resolved is not None and resolved[1] in resolved[0].classes:
                owner, class_name = resolved
                for method in self._methods(owner, owner.classes[class_name], attr):
                    yield method, _skipped(method, self.module_of[id(method)])

    def _enclosing_class(self, node: ast.AST, module: Module) -> ast.ClassDef | None:
        parent = module.parents.get(node)
        while parent is not None and not isinstance(parent, ast.ClassDef):
            parent = module.parents.get(parent)
        return parent

    def _global(self, name: str, module: Module) -> tuple[Module, str] | None:
        """The module defining the global `name` seen from `module`, and its name there."""
        seen = 0
        while name in module.imports and seen < 20:
            source, original = module.imports[name]
            if source not in self.modules:
                return None
            module, name = self.modules[source], original
            seen += 1
        return module, name

    def _methods(self, module: Module, cls: ast.ClassDef, name: str) -> Iterator[FunctionNode]:
        """Method `name` of `cls`, looked up through its bases as Python would (first found)."""
        for stmt in cls.body:
            if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef) and stmt.name == name:
                yield stmt
                return
        for base in cls.bases:
            if isinstance(base, ast.Name):
                resolved = self._global(base.id, module)
                if resolved is not None and resolved[1] in resolved[0].classes:
                    owner, base_name = resolved
                    yield from self._methods(owner, owner.classes[base_name], name)

    # ---- what an expression can be

    def _eval(self, expr: ast.expr, module: Module, depth: int = 0) -> Found:
        found = Found()
        site = Site(module.path, expr.lineno)
        if depth > 30:
            found.unresolved.add((site, ast.unparse(expr)))
        elif isinstance(expr, ast.Constant) and isinstance(expr.value, str):
            found.values[expr.value] = {site}
        elif isinstance(expr, ast.Constant) and expr.value is None:
            pass  # no code: the default of an optional code (a `Reading` that keeps codes)
        elif isinstance(expr, ast.IfExp):
            found.add(self._eval(expr.body, module, depth + 1))
            found.add(self._eval(expr.orelse, module, depth + 1))
        elif isinstance(expr, ast.BoolOp):
            for value in expr.values:
                found.add(self._eval(value, module, depth + 1))
        elif isinstance(expr, ast.JoinedStr):
            found.add(self._joined(expr, module, depth))
        elif isinstance(expr, ast.Name):
            found.add(self._name(expr, module, depth))
        elif (
            isinstance(expr, ast.Subscript)
            and isinstance(expr.slice, ast.Constant)
            and isinstance(expr.slice.value, int)
            and (tuples := list(self._tuples(expr.value, module, depth + 1)))
        ):
            index = expr.slice.value
            for items in tuples:
                if -len(items) <= index < len(items):
                    item = items[index]
                    found.add(self._eval(item, self.module_of[id(item)], depth + 1))
        elif isinstance(expr, ast.Subscript):
            for element in self._elements(expr.value, module, depth):
                found.add(self._eval(element, self.module_of[id(element)], depth + 1))
        elif (
            isinstance(expr, ast.Call)
            and isinstance(expr.func, ast.Attribute)
            and expr.func.attr == "get"
        ):
            for element in self._elements(expr.func.value, module, depth):
                found.add(self._eval(element, self.module_of[id(element)], depth + 1))
            if len(expr.args) > 1:
                found.add(self._eval(expr.args[1], module, depth + 1))
        elif isinstance(expr, ast.Attribute):
            found.add(self._attribute(expr, module, depth))
        else:
            found.unresolved.add((site, ast.unparse(expr)))
        return found

    def _joined(self, expr: ast.JoinedStr, module: Module, depth: int) -> Found:
        found = Found()
        parts: list[set[str]] = []
        for value in expr.values:
            if isinstance(value, ast.Constant):
                parts.append({str(value.value)})
                continue
            assert isinstance(value, ast.FormattedValue)
            inner = self._eval(value.value, module, depth + 1)
            if inner.params or inner.unresolved or value.format_spec is not None:
                found.unresolved.add((Site(module.path, expr.lineno), ast.unparse(expr)))
                return found
            parts.append(set(inner.values))
        site = Site(module.path, expr.lineno)
        for combination in itertools.product(*parts):
            found.values["".join(combination)] = {site}
        return found

    def _scopes(self, node: ast.AST, module: Module) -> Iterator[Scope]:
        """The function and comprehension scopes around `node`, innermost first."""
        parent = module.parents.get(node)
        while parent is not None:
            if isinstance(
                parent,
                ast.FunctionDef
                | ast.AsyncFunctionDef
                | ast.Lambda
                | ast.ListComp
                | ast.SetComp
                | ast.DictComp
                | ast.GeneratorExp,
            ):
                yield parent
            parent = module.parents.get(parent)

    def _name(self, expr: ast.Name, module: Module, depth: int) -> Found:
        found = Found()
        for scope in self._scopes(expr, module):
            comprehension = ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp
            if not isinstance(scope, comprehension) and expr.id in _all_params(scope):
                if isinstance(scope, ast.Lambda):
                    found.unresolved.add((Site(module.path, expr.lineno), expr.id))
                else:
                    found.params.add((id(scope), expr.id))
                return found
            bindings = list(self._bindings(scope, expr.id, module))
            if bindings:
                for binding in bindings:
                    found.add(self._binding(binding, expr.id, module, depth))
                return found
        resolved = self._global(expr.id, module)
        if resolved is not None and resolved[1] in resolved[0].globals:
            owner, name = resolved
            for value in owner.globals[name]:
                found.add(self._eval(value, owner, depth + 1))
            return found
        found.unresolved.add((Site(module.path, expr.lineno), expr.id))
        return found

    def _bindings(self, scope: Scope, name: str, module: Module) -> list[ast.AST]:
        """The statements and generators of `scope` (not of scopes inside it) binding `name`."""
        key = (id(scope), name)
        if key not in self._binding_cache:
            self._binding_cache[key] = list(self._find_bindings(scope, name))
        return self._binding_cache[key]

    def _find_bindings(self, scope: Scope, name: str) -> Iterator[ast.AST]:
        if isinstance(scope, ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp):
            for generator in scope.generators:
                if name in _target_names(generator.target):
                    yield generator
            return
        body = [scope.body] if isinstance(scope, ast.Lambda) else scope.body
        stack: list[ast.AST] = list(body)
        while stack:
            node = stack.pop()
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                continue
            if isinstance(node, ast.Lambda | ast.ListComp | ast.SetComp | ast.DictComp):
                continue
            if isinstance(node, ast.GeneratorExp):
                continue
            if isinstance(node, ast.Assign | ast.AnnAssign | ast.For | ast.AsyncFor):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                if any(name in _target_names(t) for t in targets):
                    yield node
            elif (
                (isinstance(node, ast.NamedExpr) and node.target.id == name)
                or (isinstance(node, ast.ExceptHandler) and node.name == name)
                or (
                    isinstance(node, ast.withitem)
                    and node.optional_vars is not None
                    and name in _target_names(node.optional_vars)
                )
            ):
                yield node
            stack.extend(ast.iter_child_nodes(node))

    def _binding(self, binding: ast.AST, name: str, module: Module, depth: int) -> Found:
        found = Found()
        site = Site(module.path, getattr(binding, "lineno", 0))
        if isinstance(binding, ast.Assign | ast.AnnAssign | ast.NamedExpr):
            if binding.value is None:
                return found
            targets = binding.targets if isinstance(binding, ast.Assign) else [binding.target]
            for target in targets:
                for value in self._unpack(target, binding.value, name, module, depth):
                    found.add(self._eval(value, self.module_of[id(value)], depth + 1))
        elif isinstance(binding, ast.For | ast.AsyncFor | ast.comprehension):
            for element in self._elements(binding.iter, module, depth):
                for value in self._unpack(binding.target, element, name, module, depth):
                    found.add(self._eval(value, self.module_of[id(value)], depth + 1))
        else:
            found.unresolved.add((site, name))
        if not (found.values or found.params or found.unresolved):
            found.unresolved.add((site, name))
        return found

    def _unpack(
        self, target: ast.expr, value: ast.expr, name: str, module: Module, depth: int
    ) -> Iterator[ast.expr]:
        """The expressions `name` gets when `value` is assigned to `target`."""
        if isinstance(target, ast.Name):
            if target.id == name:
                yield value
            return
        if not isinstance(target, ast.Tuple | ast.List):
            return
        for i, part in enumerate(target.elts):
            if name in _target_names(part):
                for items in self._tuples(value, self.module_of[id(value)], depth):
                    if i < len(items):
                        yield from self._unpack(part, items[i], name, module, depth)

    def _tuples(self, expr: ast.expr, module: Module, depth: int) -> Iterator[list[ast.expr]]:
        """The items of the tuples `expr` can be: a display (``*x`` spliced in), a name bound
        to one, or what a function it calls returns or yields."""
        if depth > 30:
            return
        if isinstance(expr, ast.Tuple | ast.List):
            heads: list[list[ast.expr]] = [[]]
            for element in expr.elts:
                if isinstance(element, ast.Starred):
                    tails = list(self._tuples(element.value, module, depth + 1))
                    heads = [head + tail for head in heads for tail in tails]
                else:
                    heads = [[*head, element] for head in heads]
            yield from heads
        elif isinstance(expr, ast.IfExp):
            yield from self._tuples(expr.body, module, depth + 1)
            yield from self._tuples(expr.orelse, module, depth + 1)
        elif isinstance(expr, ast.Name):
            for scope in self._scopes(expr, module):
                bindings = list(self._bindings(scope, expr.id, module))
                for binding in bindings:
                    if isinstance(binding, ast.Assign | ast.AnnAssign) and binding.value:
                        yield from self._tuples(binding.value, module, depth + 1)
                if bindings:
                    return
        elif isinstance(expr, ast.Call):
            for value in self._results(expr, module, depth):
                yield from self._tuples(value, self.module_of[id(value)], depth + 1)

    def _results(self, call: ast.Call, module: Module, depth: int) -> Iterator[ast.expr]:
        """What the functions `call` may call return or yield."""
        for target, _ in self._callees(call.func, module):
            if isinstance(target, ast.ClassDef):
                continue
            for node in _own_nodes(target):
                if isinstance(node, ast.Return | ast.Yield) and node.value is not None:
                    yield node.value

    def _elements(self, expr: ast.expr, module: Module, depth: int) -> list[ast.expr]:
        """The values a container expression holds: the items of a literal, the values of a
        dict, what is appended or added to a list by its name anywhere in the module."""
        if depth > 30:
            return []
        if isinstance(expr, ast.List | ast.Tuple | ast.Set):
            return [e.value if isinstance(e, ast.Starred) else e for e in expr.elts]
        if isinstance(expr, ast.Dict):
            return [v for v in expr.values if v is not None]
        if (
            isinstance(expr, ast.Call)
            and isinstance(expr.func, ast.Attribute)
            and expr.func.attr in ("values", "items")
        ):
            values = self._elements(expr.func.value, module, depth + 1)
            if expr.func.attr == "values":
                return values
            return [ast.copy_location(ast.Tuple([ast.Constant(None), v]), v) for v in values]
        if isinstance(expr, ast.Call):
            out = []
            for target, _ in self._callees(expr.func, module):
                if isinstance(target, ast.ClassDef):
                    continue
                owner = self.module_of[id(target)]
                for node in _own_nodes(target):
                    if isinstance(node, ast.Yield) and node.value is not None:
                        out.append(node.value)
                    elif isinstance(node, ast.Return | ast.YieldFrom) and node.value is not None:
                        out += self._elements(node.value, owner, depth + 1)
            return out
        key = _container_name(expr)
        if key is None:
            return []
        out = []
        for node in self._fills(module).get(key, []):
            if isinstance(node, ast.Call):
                if node.func.attr == "extend":  # type: ignore[attr-defined]
                    out += self._elements(node.args[0], module, depth + 1)
                else:
                    out.append(node.args[-1])
            elif node.value is not None:  # type: ignore[attr-defined]
                out += self._elements(node.value, module, depth + 1)  # type: ignore[attr-defined]
        for value in out:
            self._register(value, module)
        return out

    def _fills(self, module: Module) -> dict[str, list[ast.AST]]:
        """Where each container of `module` gets items, by its name: ``x.append(…)``,
        ``x.add(…)``, ``x.insert(…)``, ``x.extend(…)``, ``x = …``, ``x += …``."""
        if module.name in self._fill_cache:
            return self._fill_cache[module.name]
        fills: dict[str, list[ast.AST]] = {}
        for node in ast.walk(module.tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args:
                key = _container_name(node.func.value)
                if key is not None and node.func.attr in ("append", "add", "insert", "extend"):
                    fills.setdefault(key, []).append(node)
            elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign) and node.value:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    key = _container_name(target)
                    if key is not None:
                        fills.setdefault(key, []).append(node)
        self._fill_cache[module.name] = fills
        return fills

    def _register(self, node: ast.AST, module: Module) -> None:
        """Note the module of a synthesized node."""
        for child in ast.walk(node):
            self.module_of.setdefault(id(child), module)

    def _attribute(self, expr: ast.Attribute, module: Module, depth: int) -> Found:
        """``x.code``: a field of the dataclasses that have one (a parameter of theirs), or
        what the classes that set ``self.code`` set it to. The classes are those of an
        ``except`` variable, else every class of the source with that field or attribute."""
        found = Found()
        candidates = self._receiver_classes(expr.value, module) or [
            (owner, cls)
            for owner in self.modules.values()
            for cls in owner.classes.values()
            if _sets(cls, expr.attr) or _text_field(cls, expr.attr)
        ]
        for owner, cls in candidates:
            if expr.attr in _fields(cls):
                found.params.add((id(cls), expr.attr))
            for value in _self_assignments(cls).get(expr.attr, []):
                found.add(self._eval(value, owner, depth + 1))
        if not candidates:
            found.unresolved.add((Site(module.path, expr.lineno), ast.unparse(expr)))
        return found

    def _receiver_classes(
        self, receiver: ast.expr, module: Module
    ) -> list[tuple[Module, ast.ClassDef]]:
        """The classes an ``except X as name`` variable holds, when `receiver` is one."""
        if not isinstance(receiver, ast.Name):
            return []
        out: list[tuple[Module, ast.ClassDef]] = []
        for scope in self._scopes(receiver, module):
            if isinstance(scope, ast.Lambda | ast.ListComp | ast.SetComp | ast.DictComp):
                continue
            if isinstance(scope, ast.GeneratorExp):
                continue
            for binding in self._bindings(scope, receiver.id, module):
                if isinstance(binding, ast.ExceptHandler) and binding.type is not None:
                    types = (
                        binding.type.elts if isinstance(binding.type, ast.Tuple) else [binding.type]
                    )
                    for t in types:
                        if isinstance(t, ast.Name):
                            resolved = self._global(t.id, module)
                            if resolved and resolved[1] in resolved[0].classes:
                                out.append((resolved[0], resolved[0].classes[resolved[1]]))
            if out:
                return out
        return out


@functools.cache
def _self_assignments(cls: ast.ClassDef) -> dict[str, list[ast.expr]]:
    """What the methods of `cls` assign to each ``self.<attribute>``."""
    out: dict[str, list[ast.expr]] = {}
    for node in ast.walk(cls):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if (
                    isinstance(target, ast.Attribute)
                    and isinstance(target.value, ast.Name)
                    and target.value.id == "self"
                ):
                    out.setdefault(target.attr, []).append(node.value)
    return out


def _sets(cls: ast.ClassDef, attr: str) -> bool:
    """Whether a method of `cls` assigns ``self.<attr>``."""
    return attr in _self_assignments(cls)


def _text_field(cls: ast.ClassDef, name: str) -> bool:
    """Whether `cls` is a dataclass with a text field `name` (a medical ``code: Code`` is not
    a diagnostic code)."""
    field_ = _fields(cls).get(name)
    return field_ is not None and "str" in ast.unparse(field_.annotation)


def _own_nodes(fn: FunctionNode) -> Iterator[ast.AST]:
    """The nodes of `fn`'s body, not those of functions and classes defined in it."""
    stack: list[ast.AST] = list(fn.body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda):
            continue
        yield node
        stack.extend(ast.iter_child_nodes(node))


def _target_names(target: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}


def _container_name(expr: ast.expr) -> str | None:
    """A name that identifies a container across a module: ``problems``, ``self.problems``."""
    if isinstance(expr, ast.Name):
        return expr.id
    if isinstance(expr, ast.Attribute) and isinstance(expr.value, ast.Name):
        return f"{expr.value.id}.{expr.attr}"
    return None
