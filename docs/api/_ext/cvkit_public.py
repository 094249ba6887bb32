"""Sphinx extension: ``.. cvkit-public:: cvkit.data`` documents a package face's public names.

cvkit's packages define their names in private ``_modules`` and re-export them from the package
(``cvkit/<pkg>/__init__.py``'s ``__all__``, often lazily). This directive reads ``__all__`` and writes,
for each name, the autodoc directive that documents it under its public name (``cvkit.data.ImageDataset``,
not ``cvkit.data._dataset.ImageDataset``), after a summary table. So a new public name appears in the
reference without editing a page, and a private module is never documented as such.

A name is documented in full on one page only, its *home*: the face whose package holds the module
that defines it (``batch_score`` lives in ``cvkit.models._batch``, so ``cvkit.serving``, which
re-exports it, links to ``cvkit.models.batch_score``). A name whose defining package does not export
it (``plot_history`` in ``cvkit.evaluation.plots``) is documented where it is exported. A public
sub-module in ``__all__`` (``cvkit.data.augment``) links to its own page.

``:exports: _EXPORTS`` reads another mapping of public names instead (``cvkit/__init__.py``'s
``_EXPORTS``: name -> package face), and links each name to its home, documenting none.
"""
from __future__ import annotations

import functools
import importlib
import inspect
import types

from docutils import nodes
from docutils.parsers.rst import directives
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective

# every page that documents a face, in order; a name's home is chosen among these
FACES = ("cvkit.data", "cvkit.data.augment", "cvkit.backbones", "cvkit.features", "cvkit.models",
         "cvkit.classifiers", "cvkit.evaluation", "cvkit.evaluation.plots", "cvkit.serving", "cvkit.scale",
         "cvkit.widgets", "cvkit.options")


def public_names(face: str) -> list[str]:
    """``__all__`` of a package face, in its order."""
    return list(importlib.import_module(face).__all__)


def defining_module(obj: object) -> str | None:
    """The module that defines ``obj`` (None for plain data such as a tuple of strings)."""
    if isinstance(obj, types.ModuleType):
        return obj.__name__
    return getattr(obj, "__module__", None) if (inspect.isclass(obj) or callable(obj)) else None


def home(face: str, name: str) -> str:
    """The face that documents ``face.name`` in full (the face itself unless another one owns it)."""
    obj = getattr(importlib.import_module(face), name)
    module = defining_module(obj)
    if module is None or isinstance(obj, types.ModuleType):
        return face
    owners = [f for f in FACES if (module == f or module.startswith(f + "."))
              and name in public_names(f) and getattr(importlib.import_module(f), name) is obj]
    return max(owners, key=len) if owners else face


def directive_for(face: str, name: str) -> list[str]:
    """The autodoc lines documenting ``face.name``."""
    obj = getattr(importlib.import_module(face), name)
    full = f"{face}.{name}"
    if inspect.isclass(obj):
        if issubclass(obj, BaseException):
            return [f".. autoexception:: {full}", ""]
        return [f".. autoclass:: {full}", "   :members:", ""]
    if callable(obj):
        return [f".. autofunction:: {full}", ""]
    if isinstance(obj, dict):  # a mapping's value is long: its documentation says what it holds
        return [f".. autodata:: {full}", "   :no-value:", ""]
    return [f".. autodata:: {full}", ""]


def role_for(obj: object) -> str:
    if isinstance(obj, types.ModuleType):
        return "mod"
    if inspect.isclass(obj):
        return "exc" if issubclass(obj, BaseException) else "class"
    return "func" if callable(obj) else "data"


class PublicNames(SphinxDirective):
    """``.. cvkit-public:: <face>``: the summary table, then every name at home on this page."""

    required_arguments = 1
    option_spec = {"exports": directives.unchanged}

    def run(self) -> list[nodes.Node]:
        face = self.arguments[0]
        module = importlib.import_module(face)
        if "exports" in self.options:
            mapping = getattr(module, self.options["exports"])
            rows = [(name, f"{where}.{name}") for name, where in mapping.items()]
            lines = self.table(rows, {name: getattr(importlib.import_module(w), name)
                                      for name, w in mapping.items()})
        else:
            names = public_names(face)
            objs = {name: getattr(module, name) for name in names}
            rows = []
            for name in names:
                obj = objs[name]
                target = obj.__name__ if isinstance(obj, types.ModuleType) else f"{home(face, name)}.{name}"
                rows.append((name, target))
            lines = self.table(rows, objs)
            for name, target in rows:
                if target == f"{face}.{name}" and not isinstance(objs[name], types.ModuleType):
                    lines += directive_for(face, name)
        node = nodes.container()
        self.state.nested_parse(StringList(lines, source=f"<cvkit-public {face}>"), self.content_offset, node)
        return node.children

    @staticmethod
    def table(rows: list[tuple[str, str]], objs: dict[str, object]) -> list[str]:
        """A two-column list-table: the name (a link to its entry) and the first line of its docstring."""
        lines = [".. list-table::", "   :header-rows: 1", "   :widths: 30 70", "", "   * - name",
                 "     - what it is"]
        for name, target in rows:
            obj = objs[name]
            doc = inspect.getdoc(obj) if defining_module(obj) else None
            first = (doc or "").strip().split("\n\n")[0].replace("\n", " ")
            lines += [f"   * - :{role_for(obj)}:`{name} <{target}>`", f"     - {first}"]
        return lines + [""]


@functools.cache  # per process: object ids mean nothing in a pickled environment
def public_homes() -> dict[int, str]:
    """``id(object) -> its documented name`` (``cvkit.data.ImageDataset``) for every public class and function."""
    homes: dict[int, str] = {}
    for face in FACES:
        module = importlib.import_module(face)
        for name in public_names(face):
            obj = getattr(module, name)
            if defining_module(obj) and not isinstance(obj, types.ModuleType) and home(face, name) == face:
                homes.setdefault(id(obj), f"{face}.{name}")
    return homes


def lookup(dotted: str) -> object | None:
    """The object a dotted name reaches (``cvkit.ImageSource``, ``cvkit.features._featurizer.X``), or None."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        try:
            for attr in parts[i:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return None
        return obj
    return None


def resolve_public(app, env, node, contnode):
    """A reference to a cvkit name by another path (``cvkit.load_model``, ``cvkit.models._folder.load_model``,
    ``cvkit.ImageSource.resolve``) links to where the name is documented (``cvkit.models.load_model``)."""
    target = node.get("reftarget", "")
    if node.get("refdomain") != "py" or not target.startswith("cvkit."):
        return None
    parts = target.split(".")
    for i in range(len(parts), 1, -1):
        obj = lookup(".".join(parts[:i]))
        public = public_homes().get(id(obj)) if obj is not None else None
        if public:
            new = ".".join([public, *parts[i:]])
            if new == target:
                return None
            return env.get_domain("py").resolve_xref(env, node["refdoc"], app.builder, node["reftype"], new,
                                                     node, contnode)
    return None


def skip_member(app, what, name, obj, skip, options):
    """Leave out scikit-learn's metadata-routing setters (``set_fit_request`` ...): not cvkit's API."""
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return None


def setup(app):
    app.add_directive("cvkit-public", PublicNames)
    app.connect("autodoc-skip-member", skip_member)
    app.connect("missing-reference", resolve_public)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
