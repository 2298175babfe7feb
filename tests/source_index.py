"""An index of the modules under a source root, for `diagnostic_scan`: what each call may
call (functions, methods through their bases, dataclass constructors, callables passed as
parameters or held in attributes), where each name of a scope is bound, where containers get
their items, what functions return. Over-approximate by design: a call whose target is
unclear is taken to call every candidate.
"""

from __future__ import annotations

import ast
import functools
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef
# A callable a code can be passed to: a function, or a dataclass (its fields are parameters).
Callee = FunctionNode | ast.ClassDef
Scope = FunctionNode | ast.Lambda | ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp


@dataclass(frozen=True, slots=True)
class Site:
    """A place in the source: module path and line."""

    path: str
    line: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}"


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


def parse_module(name: str, path: str, tree: ast.Module) -> Module:
    """`tree` parsed from the module `name` (shown as `path`), with its indexes."""
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


def params(fn: Callee | ast.Lambda) -> list[str]:
    """The positional parameters of a function, or the fields of a dataclass."""
    if isinstance(fn, ast.ClassDef):
        return list(fields_of(fn))
    return [a.arg for a in (*fn.args.posonlyargs, *fn.args.args)]


@functools.cache
def fields_of(cls: ast.ClassDef) -> dict[str, ast.AnnAssign]:
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


def all_params(fn: FunctionNode | ast.Lambda) -> list[str]:
    """Every parameter name of a function."""
    args = fn.args
    names = [*params(fn), *(a.arg for a in args.kwonlyargs)]
    names += [a.arg for a in (args.vararg, args.kwarg) if a is not None]
    return names


def default_of(fn: Callee, name: str) -> ast.expr | None:
    """The default of parameter or field `name`, if it has one."""
    if isinstance(fn, ast.ClassDef):
        field_ = fields_of(fn).get(name)
        return field_.value if field_ is not None else None
    positional = params(fn)
    if name in positional:
        i = positional.index(name) - (len(positional) - len(fn.args.defaults))
        return fn.args.defaults[i] if i >= 0 else None
    for arg, default in zip(fn.args.kwonlyargs, fn.args.kw_defaults, strict=True):
        if arg.arg == name:
            return default
    return None


def decorators(fn: FunctionNode) -> set[str]:
    """The plain names `fn` is decorated with."""
    return {d.id for d in fn.decorator_list if isinstance(d, ast.Name)}


def skipped_params(fn: FunctionNode, module: Module) -> int:
    """How many leading parameters a call of `fn` through an object does not pass."""
    method = isinstance(module.parents.get(fn), ast.ClassDef)
    return 1 if method and "staticmethod" not in decorators(fn) else 0


@functools.cache
def self_assignments(cls: ast.ClassDef) -> dict[str, list[ast.expr]]:
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


def sets_attribute(cls: ast.ClassDef, attr: str) -> bool:
    """Whether a method of `cls` assigns ``self.<attr>``."""
    return attr in self_assignments(cls)


def text_field(cls: ast.ClassDef, name: str) -> bool:
    """Whether `cls` is a dataclass with a text field `name` (a medical ``code: Code`` is not
    a diagnostic code)."""
    field_ = fields_of(cls).get(name)
    return field_ is not None and "str" in ast.unparse(field_.annotation)


def own_nodes(fn: FunctionNode) -> Iterator[ast.AST]:
    """The nodes of `fn`'s body, not those of functions and classes defined in it."""
    stack: list[ast.AST] = list(fn.body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda):
            continue
        yield node
        stack.extend(ast.iter_child_nodes(node))


def target_names(target: ast.AST) -> set[str]:
    """The names an assignment target binds."""
    return {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}


def container_name(expr: ast.expr) -> str | None:
    """A name that identifies a container across a module: ``problems``, ``self.problems``."""
    if isinstance(expr, ast.Name):
        return expr.id
    if isinstance(expr, ast.Attribute) and isinstance(expr.value, ast.Name):
        return f"{expr.value.id}.{expr.attr}"
    return None


class SourceIndex:
    """The parsed modules under a source root (``src/protocode``) and the lookups over them."""

    def __init__(self, src: Path) -> None:
        self.modules: dict[str, Module] = {}
        for path in sorted(src.rglob("*.py")):
            parts = list(path.relative_to(src.parent).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            name = ".".join(parts)
            shown = path.relative_to(src.parent).as_posix()
            tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
            self.modules[name] = parse_module(name, shown, tree)
        self.module_of: dict[int, Module] = {}
        self.functions: dict[int, Callee] = {}
        for module in self.modules.values():
            for node in ast.walk(module.tree):
                self.module_of[id(node)] = module
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                    self.functions[id(node)] = node
        self._fill_cache: dict[str, dict[str, list[ast.AST]]] = {}
        self._callee_cache: dict[int, list[tuple[Callee, int]]] = {}
        self._binding_cache: dict[tuple[int, str], list[ast.AST]] = {}
        self.calls = [
            (node, module)
            for module in self.modules.values()
            for node in ast.walk(module.tree)
            if isinstance(node, ast.Call)
        ]
        self._caller_index: dict[int, list[tuple[ast.Call, Module]]] | None = None
        self._caller_index = self._index_callers()

    @staticmethod
    def _argument(call: ast.Call, name: str, index: int) -> ast.expr | None:
        for keyword in call.keywords:
            if keyword.arg == name:
                return keyword.value
        positional = list(itertools.takewhile(lambda a: not isinstance(a, ast.Starred), call.args))
        if 0 <= index < len(positional):
            return positional[index]
        return None

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
                if func.id in all_params(scope):
                    # A callable passed in (``report(code, …)``): what the callers pass.
                    if self._caller_index is None:
                        return  # still indexing the calls
                    for call, caller in self._callers(scope):
                        names = params(scope)
                        skipped = skipped_params(scope, module)
                        index = names.index(func.id) - skipped if func.id in names else -1
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
            if fields_of(cls) and not inits:
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
        for node, module in self.calls:
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
                    yield method, skipped_params(method, self.module_of[id(method)])
                held = self_assignments(cls).get(attr, [])
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
                    yield method, skipped_params(method, self.module_of[id(method)])
                return
        for fn in module.defs.get(attr, []):
            yield fn, skipped_params(fn, module)
        for name in module.imports:
            resolved = self._global(name, module)
            if resolved is not None and resolved[1] in resolved[0].classes:
                owner, class_name = resolved
                for method in self._methods(owner, owner.classes[class_name], attr):
                    yield method, skipped_params(method, self.module_of[id(method)])

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

    def _bindings(self, scope: Scope, name: str, module: Module) -> list[ast.AST]:
        """The statements and generators of `scope` (not of scopes inside it) binding `name`."""
        key = (id(scope), name)
        if key not in self._binding_cache:
            self._binding_cache[key] = list(self._find_bindings(scope, name))
        return self._binding_cache[key]

    def _find_bindings(self, scope: Scope, name: str) -> Iterator[ast.AST]:
        if isinstance(scope, ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp):
            for generator in scope.generators:
                if name in target_names(generator.target):
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
                if any(name in target_names(t) for t in targets):
                    yield node
            elif (
                (isinstance(node, ast.NamedExpr) and node.target.id == name)
                or (isinstance(node, ast.ExceptHandler) and node.name == name)
                or (
                    isinstance(node, ast.withitem)
                    and node.optional_vars is not None
                    and name in target_names(node.optional_vars)
                )
            ):
                yield node
            stack.extend(ast.iter_child_nodes(node))

    def _results(self, call: ast.Call, module: Module, depth: int) -> Iterator[ast.expr]:
        """What the functions `call` may call return or yield."""
        for target, _ in self._callees(call.func, module):
            if isinstance(target, ast.ClassDef):
                continue
            for node in own_nodes(target):
                if isinstance(node, ast.Return | ast.Yield) and node.value is not None:
                    yield node.value

    def _fills(self, module: Module) -> dict[str, list[ast.AST]]:
        """Where each container of `module` gets items, by its name: ``x.append(…)``,
        ``x.add(…)``, ``x.insert(…)``, ``x.extend(…)``, ``x = …``, ``x += …``."""
        if module.name in self._fill_cache:
            return self._fill_cache[module.name]
        fills: dict[str, list[ast.AST]] = {}
        for node in ast.walk(module.tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args:
                key = container_name(node.func.value)
                if key is not None and node.func.attr in ("append", "add", "insert", "extend"):
                    fills.setdefault(key, []).append(node)
            elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign) and node.value:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    key = container_name(target)
                    if key is not None:
                        fills.setdefault(key, []).append(node)
        self._fill_cache[module.name] = fills
        return fills

    def _register(self, node: ast.AST, module: Module) -> None:
        """Note the module of a synthesized node."""
        for child in ast.walk(node):
            self.module_of.setdefault(id(child), module)

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
