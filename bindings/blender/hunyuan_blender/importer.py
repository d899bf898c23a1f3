"""File > Import > Hunyuan mesh (.glb/.obj/.ply): loads through libhunyuan, not Blender's importers."""
import os

import bpy
import numpy as np
from bpy.props import CollectionProperty, StringProperty
from bpy_extras.io_utils import ImportHelper

EXTENSIONS = (".glb", ".obj", ".ply")


def mesh_to_object(mesh, name, context, location=None):
    """Creates a Blender mesh object from a hunyuan.Mesh (vertex colours as a colour attribute named
    "Col" and a material that shows them) and links it into the active collection."""
    verts = np.ascontiguousarray(mesh.vertices, dtype=np.float32)
    faces = np.ascontiguousarray(mesh.faces, dtype=np.int32)
    me = bpy.data.meshes.new(name)
    me.vertices.add(len(verts))
    me.vertices.foreach_set("co", verts.ravel())
    me.loops.add(faces.size)
    me.loops.foreach_set("vertex_index", faces.ravel())
    me.polygons.add(len(faces))
    me.polygons.foreach_set("loop_start", np.arange(0, faces.size, 3, dtype=np.int32))
    me.update(calc_edges=True)
    colors = mesh.colors
    if colors is not None and len(colors) == len(verts):
        rgba = np.ones((len(verts), 4), dtype=np.float32)
        c = np.asarray(colors)
        c = c.astype(np.float32) / 255.0 if c.dtype == np.uint8 else c.astype(np.float32)
        rgba[:, : c.shape[1]] = c[:, :4]
        attr = me.color_attributes.new("Col", "FLOAT_COLOR", "POINT")
        attr.data.foreach_set("color", rgba.ravel())
        me.color_attributes.active_color = attr
        me.materials.append(vertex_color_material())
    obj = bpy.data.objects.new(name, me)
    context.collection.objects.link(obj)
    if location is not None:
        obj.location = location
    return obj


def vertex_color_material():
    mat = bpy.data.materials.get("Hunyuan Vertex Colour")
    if mat is not None:
        return mat
    mat = bpy.data.materials.new("Hunyuan Vertex Colour")
    mat.use_nodes = True
    nodes = mat.node_tree.nodes
    bsdf = nodes.get("Principled BSDF")
    attr = nodes.new("ShaderNodeVertexColor")
    attr.layer_name = "Col"
    mat.node_tree.links.new(attr.outputs["Color"], bsdf.inputs["Base Color"])
    return mat


class IMPORT_SCENE_OT_hunyuan(bpy.types.Operator, ImportHelper):
    """Import meshes (.glb, .obj, .ply) through the Hunyuan library"""

    bl_idname = "import_scene.hunyuan"
    bl_label = "Import Hunyuan Mesh"
    bl_options = {"REGISTER", "UNDO", "PRESET"}

    filter_glob: StringProperty(default="*.glb;*.obj;*.ply", options={"HIDDEN"})
    files: CollectionProperty(type=bpy.types.OperatorFileListElement, options={"HIDDEN", "SKIP_SAVE"})
    directory: StringProperty(subtype="DIR_PATH", options={"HIDDEN", "SKIP_SAVE"})

    def execute(self, context):
        import hunyuan

        paths = [os.path.join(self.directory, f.name) for f in self.files if f.name] or [self.filepath]
        imported = 0
        for path in paths:
            try:
                mesh = hunyuan.Mesh.load(path)
            except (hunyuan.HunyuanError, OSError, ValueError) as e:
                self.report({"ERROR"}, f"{os.path.basename(path)}: {e}")
                continue
            name = os.path.splitext(os.path.basename(path))[0]
            obj = mesh_to_object(mesh, name, context)
            obj.select_set(True)
            context.view_layer.objects.active = obj
            imported += 1
        if imported == 0:
            return {"CANCELLED"}
        self.report({"INFO"}, f"imported {imported} mesh(es)")
        return {"FINISHED"}


class IO_FH_hunyuan(bpy.types.FileHandler):
    bl_idname = "IO_FH_hunyuan"
    bl_label = "Hunyuan mesh"
    bl_import_operator = "import_scene.hunyuan"
    bl_file_extensions = ";".join(EXTENSIONS)

    @classmethod
    def poll_drop(cls, context):
        return context.area is not None and context.area.type == "VIEW_3D"


def menu_import(self, context):
    self.layout.operator(IMPORT_SCENE_OT_hunyuan.bl_idname, text="Hunyuan mesh (.glb/.obj/.ply)")


classes = (IMPORT_SCENE_OT_hunyuan, IO_FH_hunyuan)


def register():
    for c in classes:
        bpy.utils.register_class(c)
    bpy.types.TOPBAR_MT_file_import.append(menu_import)


def unregister():
    bpy.types.TOPBAR_MT_file_import.remove(menu_import)
    for c in reversed(classes):
        bpy.utils.unregister_class(c)
