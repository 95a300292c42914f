"""Sphinx configuration (offline: no intersphinx)."""
import os
import sys

sys.path.insert(0, os.path.abspath(".."))

from dynamic_dynamodb import __version__  # noqa: E402

project = "dynamic-dynamodb"
author = "the dynamic-dynamodb developers"
copyright = "2026, the dynamic-dynamodb developers"
version = release = __version__
extensions = ["sphinx.ext.autodoc"]
exclude_patterns = ["_build"]
html_theme = "alabaster"
# the man page is the command-line reference; `make man` rebuilds docs/dynamic-dynamodb.1 (installed by setup.py)
man_pages = [("command_line", "dynamic-dynamodb", "autoscale provisioned DynamoDB tables and GSIs", [author], 1)]
html_static_path = ["_static"]
html_css_files = ["custom.css"]  # wide key tables wrap instead of overflowing the page


def _check_option_tables(app):
    """Warn (an error with -W) where a key table disagrees with the option table in config.py."""
    from pathlib import Path

    from sphinx.util import logging

    from dynamic_dynamodb import option_docs

    for problem in option_docs.problems(Path(app.srcdir)):
        logging.getLogger(__name__).warning("option table: %s", problem)


def _plain_internal_links(app, doctree, docname):
    """In the man page, a link to another page of these docs is its title alone: man has no
    such pages, and Sphinx's man writer would print an empty ``<>`` after it."""
    if app.builder.name != "man":
        return
    from docutils import nodes

    for ref in list(doctree.findall(nodes.reference)):
        if ref.get("internal") or not ref.get("refuri", "").partition(":")[1]:
            ref.replace_self(nodes.inline(ref.rawsource, ref.astext()))


def setup(app):
    app.connect("builder-inited", _check_option_tables)
    app.connect("doctree-resolved", _plain_internal_links)
