"""Hunyuan for Blender: import meshes through libhunyuan and run the Hunyuan engines from a sidebar.

Works as a Blender 4.2+ extension (blender_manifest.toml, native module from the bundled wheel) and as a
plain package imported by a script (`import hunyuan_blender; hunyuan_blender.register()`), which is how
the tests and `blender -b --python` use it.
"""
from . import importer, panel

_modules = (importer, panel)


def register():
    for m in _modules:
        m.register()


def unregister():
    for m in reversed(_modules):
        m.unregister()
