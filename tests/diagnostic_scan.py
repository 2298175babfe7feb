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
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from source_index import (
    Module,
    Site,
    SourceIndex,
    all_params,
    container_name,
    default_of,
    fields_of,
    own_nodes,
    params,
    self_assignments,
    sets_attribute,
    target_names,
    text_field,
)

# The one constructor every code ends in; its `code` field is the root of the scan.
DIAGNOSTIC = ("protocode.core.errors", "Diagnostic")


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


class CodeScan(SourceIndex):
    """The codes the modules under a source root can put in a `Diagnostic`."""

    def __init__(self, src: Path) -> None:
        super().__init__(src)
        root_module, root_name = DIAGNOSTIC
        root = self.modules[root_module].classes[root_name]
        # Parameters and fields through which a code reaches a Diagnostic: (id of callee,
        # name); the root is Diagnostic's own field.
        self.sinks: set[tuple[int, str]] = {(id(root), "code")}
        self.codes: dict[str, set[Site]] = {}
        self.unresolved: set[tuple[Site, str]] = set()
        self._run()

    # ---- the fixed point: every call of a function with a code parameter is a code site

    def _run(self) -> None:
        while True:
            found = Found()
            for node, module in self.calls:
                for expr, context in self._code_arguments(node, module):
                    found.add(self._eval(expr, context))
            for fn_id, name in sorted(self.sinks):
                fn = self.functions[fn_id]
                default = default_of(fn, name)
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
            names = params(target)
            positions = {
                name: (names.index(name) - skipped if name in names else -1)
                for fn_id, name in self.sinks
                if fn_id == id(target)
            }
            for name, index in positions.items():
                expr = self._argument(call, name, index)
                if expr is not None:
                    yield expr, module

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

    def _name(self, expr: ast.Name, module: Module, depth: int) -> Found:
        found = Found()
        for scope in self._scopes(expr, module):
            comprehension = ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp
            if not isinstance(scope, comprehension) and expr.id in all_params(scope):
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
            if name in target_names(part):
                for items in self._tuples(value, self.module_of[id(value)], depth):
                    if i < len(items):
                        yield from self._unpack(part, items[i], name, module, depth)

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
                for node in own_nodes(target):
                    if isinstance(node, ast.Yield) and node.value is not None:
                        out.append(node.value)
                    elif isinstance(node, ast.Return | ast.YieldFrom) and node.value is not None:
                        out += self._elements(node.value, owner, depth + 1)
            return out
        key = container_name(expr)
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

    def _attribute(self, expr: ast.Attribute, module: Module, depth: int) -> Found:
        """``x.code``: a field of the dataclasses that have one (a parameter of theirs), or
        what the classes that set ``self.code`` set it to. The classes are those of an
        ``except`` variable, else every class of the source with that field or attribute."""
        found = Found()
        candidates = self._receiver_classes(expr.value, module) or [
            (owner, cls)
            for owner in self.modules.values()
            for cls in owner.classes.values()
            if sets_attribute(cls, expr.attr) or text_field(cls, expr.attr)
        ]
        for owner, cls in candidates:
            if expr.attr in fields_of(cls):
                found.params.add((id(cls), expr.attr))
            for value in self_assignments(cls).get(expr.attr, []):
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
