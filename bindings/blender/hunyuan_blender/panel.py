"""The "Hunyuan" sidebar (3D Viewport > N panel): long engine work runs on a background thread while a
modal operator keeps the UI responsive, shows progress and can be cancelled (Esc or the Cancel button)."""
import threading

import bpy
from bpy.props import IntProperty, StringProperty

from .importer import mesh_to_object


class HunyuanJob:
    """One background computation: `work(progress)` runs on a thread; `progress(fraction)` returns False
    once cancellation was requested, which the engine turns into an AbortedError."""

    def __init__(self, work):
        self.work = work
        self.fraction = 0.0
        self.cancelled = False
        self.result = None
        self.error = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _progress(self, fraction):
        self.fraction = float(fraction)
        return not self.cancelled

    def _run(self):
        try:
            self.result = self.work(self._progress)
        except Exception as e:  # reported to the user by the operator, never raised into Blender
            self.error = e

    @property
    def done(self):
        return not self.thread.is_alive()


class HunyuanSettings(bpy.types.PropertyGroup):
    model_dir: StringProperty(name="Model", subtype="DIR_PATH", description="Reconstruction model folder (svrm)")
    views_dir: StringProperty(name="Views", subtype="DIR_PATH",
                              description="Folder with 6 views (azimuth 0..300) and the condition image, sorted by name")
    resolution: IntProperty(name="Resolution", default=128, min=16, max=512, description="Marching-cubes grid size")
    faces: IntProperty(name="Faces", default=20000, min=0, description="Target face count (0 keeps all)")
    progress: bpy.props.FloatProperty(name="Progress", default=0.0, min=0.0, max=1.0, subtype="FACTOR")
    running: bpy.props.BoolProperty(default=False)


class HUNYUAN_OT_reconstruct(bpy.types.Operator):
    """Reconstruct a mesh from views with the Hunyuan3D-1.0 reconstruction model, imported at the 3D cursor"""

    bl_idname = "hunyuan.reconstruct_views"
    bl_label = "Reconstruct from views"

    blocking: bpy.props.BoolProperty(
        name="Blocking", default=False, options={"SKIP_SAVE"},
        description="Run in the foreground (scripts, tests, background mode) instead of a cancellable modal job")

    _timer = None
    _job = None

    @classmethod
    def poll(cls, context):
        import hunyuan

        return hasattr(hunyuan, "Reconstructor") and not context.scene.hunyuan.running

    def execute(self, context):
        import os

        import hunyuan

        s = context.scene.hunyuan
        model_dir = bpy.path.abspath(s.model_dir)
        views_dir = bpy.path.abspath(s.views_dir)
        try:
            images = sorted(os.path.join(views_dir, f) for f in os.listdir(views_dir)
                            if f.lower().endswith((".png", ".jpg", ".jpeg")))
        except OSError as e:
            self.report({"ERROR"}, f"views folder: {e}")
            return {"CANCELLED"}
        resolution, faces = s.resolution, s.faces

        def work(progress):
            if len(images) != 7:
                raise ValueError(f"{views_dir}: {len(images)} images; 7 expected (6 views, then the condition image)")
            with hunyuan.Reconstructor(model_dir) as rec:
                return rec.views_to_mesh(images, resolution=resolution, faces=faces, progress=progress)

        if self.blocking or bpy.app.background:
            return self.run_blocking(context, work)
        return self.start(context, work)

    def run_blocking(self, context, work):
        try:
            mesh = work(lambda fraction: True)
        except Exception as e:  # every library error becomes a report
            self.report({"ERROR"}, f"Hunyuan: {e}")
            return {"CANCELLED"}
        self.import_result(context, mesh)
        return {"FINISHED"}

    def import_result(self, context, mesh):
        obj = mesh_to_object(mesh, "Hunyuan", context, location=context.scene.cursor.location.copy())
        self.report({"INFO"}, f"Hunyuan: {len(obj.data.vertices)} vertices, {len(obj.data.polygons)} faces")
        return obj

    def start(self, context, work):
        self._job = HunyuanJob(work)
        self._job.thread.start()
        context.scene.hunyuan.running = True
        context.scene.hunyuan.progress = 0.0
        wm = context.window_manager
        self._timer = wm.event_timer_add(0.1, window=context.window)
        wm.modal_handler_add(self)
        wm.progress_begin(0, 100)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        job = self._job
        if event.type == "ESC" or HUNYUAN_OT_cancel.requested:
            job.cancelled = True
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        context.scene.hunyuan.progress = job.fraction
        context.window_manager.progress_update(int(job.fraction * 100))
        for area in context.screen.areas if context.screen else ():
            if area.type == "VIEW_3D":
                area.tag_redraw()
        if not job.done:
            return {"PASS_THROUGH"}
        self.finish(context)
        if job.error is not None:
            self.report({"WARNING"} if job.cancelled else {"ERROR"}, f"Hunyuan: {job.error}")
            return {"CANCELLED"}
        self.import_result(context, job.result)
        return {"FINISHED"}

    def finish(self, context):
        wm = context.window_manager
        wm.event_timer_remove(self._timer)
        wm.progress_end()
        context.scene.hunyuan.running = False
        HUNYUAN_OT_cancel.requested = False


class HUNYUAN_OT_cancel(bpy.types.Operator):
    """Cancel the running Hunyuan job"""

    bl_idname = "hunyuan.cancel"
    bl_label = "Cancel"
    requested = False

    def execute(self, context):
        HUNYUAN_OT_cancel.requested = True
        return {"FINISHED"}


class VIEW3D_PT_hunyuan(bpy.types.Panel):
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Hunyuan"
    bl_label = "Hunyuan"

    def draw(self, context):
        import hunyuan

        s = context.scene.hunyuan
        layout = self.layout
        box = layout.box()
        box.label(text="Reconstruct from views")
        box.prop(s, "model_dir")
        box.prop(s, "views_dir")
        row = box.row()
        row.prop(s, "resolution")
        row.prop(s, "faces")
        if not hasattr(hunyuan, "Reconstructor"):
            box.label(text="Not available in this build", icon="INFO")
        if s.running:
            layout.prop(s, "progress", text="Working")
            layout.operator(HUNYUAN_OT_cancel.bl_idname, icon="CANCEL")
        else:
            box.operator(HUNYUAN_OT_reconstruct.bl_idname, icon="MESH_MONKEY")
        layout.operator("import_scene.hunyuan", text="Import mesh…", icon="IMPORT")


classes = (HunyuanSettings, HUNYUAN_OT_reconstruct, HUNYUAN_OT_cancel, VIEW3D_PT_hunyuan)


def register():
    for c in classes:
        bpy.utils.register_class(c)
    bpy.types.Scene.hunyuan = bpy.props.PointerProperty(type=HunyuanSettings)


def unregister():
    del bpy.types.Scene.hunyuan
    for c in reversed(classes):
        bpy.utils.unregister_class(c)
