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
    weights_dir: StringProperty(name="Weights", subtype="DIR_PATH",
                                description="Hunyuan3D-1.0 weights folder (hunyuanDiT/, mvd_lite/, svrm/, u2net.onnx)")
    image_path: StringProperty(name="Image file", subtype="FILE_PATH", description="Photo or render of one object")
    image: bpy.props.PointerProperty(name="Image", type=bpy.types.Image,
                                     description="An image datablock (used instead of the file when set)")
    prompt: StringProperty(name="Prompt", description="What to generate (Chinese or English), e.g. "
                           "\"a red ball on a blue box\"")
    prompt_model: StringProperty(name="Text model", default="",
                                 description="A hunyuan3d-tiny model (a folder or builtin:NAME; seconds), or empty for the "
                                 "Hunyuan3D-1.0 weights folder above (text to image, views, reconstruction)")
    text_steps: IntProperty(name="Text steps", default=25, min=1, max=1000,
                            description="Denoising steps of the text-to-image stage (official 25)")
    image_size: IntProperty(name="Picture size", default=1024, min=16, max=4096, step=16,
                            description="Side of the generated picture (official 1024; 512 is ~4x faster)")
    steps: IntProperty(name="Steps", default=50, min=1, max=1000, description="Denoising steps of the views")
    seed: IntProperty(name="Seed", default=0, min=0, description="Seed of the views")
    progress: bpy.props.FloatProperty(name="Progress", default=0.0, min=0.0, max=1.0, subtype="FACTOR")
    running: bpy.props.BoolProperty(default=False)


class HunyuanJobOperator:
    """What the generating operators share: `work(progress) -> hunyuan.Mesh` runs in the foreground when
    `blocking` (or in background mode), else as a cancellable modal job; the mesh is imported at the 3D
    cursor and every library error becomes a report."""

    _timer = None
    _job = None

    def run(self, context, work):
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



def image_pixels(image):
    """An image datablock as uint8 [H, W, 4], top row first (Blender stores float RGBA bottom-up)."""
    import numpy as np

    w, h = image.size
    if w == 0 or h == 0:
        raise ValueError(f"image {image.name!r} has no pixels")
    px = np.empty(w * h * 4, dtype=np.float32)
    image.pixels.foreach_get(px)
    return np.ascontiguousarray((np.clip(px.reshape(h, w, 4)[::-1], 0, 1) * 255 + 0.5).astype(np.uint8))


class HUNYUAN_OT_generate_image(HunyuanJobOperator, bpy.types.Operator):
    """Generate a coloured mesh from one image with Hunyuan3D-1.0 (background removal, six views,
    reconstruction), imported at the 3D cursor"""

    bl_idname = "hunyuan.generate_from_image"
    bl_label = "Generate from image"

    blocking: bpy.props.BoolProperty(
        name="Blocking", default=False, options={"SKIP_SAVE"},
        description="Run in the foreground (scripts, tests, background mode) instead of a cancellable modal job")
    grid_width: IntProperty(name="Grid width", default=640, min=8, options={"SKIP_SAVE"},
                            description="Width of the views grid (the release's 640; smaller for small models)")
    grid_height: IntProperty(name="Grid height", default=960, min=8, options={"SKIP_SAVE"},
                             description="Height of the views grid (the release's 960)")

    @classmethod
    def poll(cls, context):
        import hunyuan

        return hasattr(hunyuan, "Generator") and not context.scene.hunyuan.running

    def execute(self, context):
        import hunyuan

        s = context.scene.hunyuan
        weights = bpy.path.abspath(s.weights_dir)
        try:
            image = image_pixels(s.image) if s.image is not None else bpy.path.abspath(s.image_path)
        except Exception as e:  # an unreadable datablock is a report, not a crash
            self.report({"ERROR"}, f"Hunyuan: {e}")
            return {"CANCELLED"}
        if isinstance(image, str) and not image:
            self.report({"ERROR"}, "Hunyuan: pick an image file or an image datablock")
            return {"CANCELLED"}
        steps, seed, resolution, faces = s.steps, s.seed, s.resolution, s.faces
        gw, gh = self.grid_width, self.grid_height

        def work(progress):
            with hunyuan.Generator(weights) as g:
                return g.image_to_3d(image, steps=steps, seed=seed, resolution=resolution, faces=faces,
                                     grid_width=gw, grid_height=gh, progress=progress)

        return self.run(context, work)


class HUNYUAN_OT_generate_prompt(HunyuanJobOperator, bpy.types.Operator):
    """Generate a coloured mesh from a prompt, imported at the 3D cursor: with a hunyuan3d-tiny model, or
    Hunyuan3D-1.0 (text to image, background removal, six views, reconstruction) from the weights folder"""

    bl_idname = "hunyuan.generate_from_prompt"
    bl_label = "Generate from prompt"

    blocking: bpy.props.BoolProperty(
        name="Blocking", default=False, options={"SKIP_SAVE"},
        description="Run in the foreground (scripts, tests, background mode) instead of a cancellable modal job")
    grid_width: IntProperty(name="Grid width", default=640, min=8, options={"SKIP_SAVE"},
                            description="Width of the views grid (the release's 640; smaller for small models)")
    grid_height: IntProperty(name="Grid height", default=960, min=8, options={"SKIP_SAVE"},
                             description="Height of the views grid (the release's 960)")

    @classmethod
    def poll(cls, context):
        import hunyuan

        return hasattr(hunyuan, "Generator") and not context.scene.hunyuan.running

    def execute(self, context):
        import hunyuan

        s = context.scene.hunyuan
        model = s.prompt_model.strip()
        weights = model if model.startswith("builtin:") else bpy.path.abspath(model or s.weights_dir)
        prompt, text_steps, size = s.prompt, s.text_steps, s.image_size
        steps, seed, resolution, faces = s.steps, s.seed, s.resolution, s.faces
        gw, gh = self.grid_width, self.grid_height

        def work(progress):
            with hunyuan.Generator(weights) as g:
                return g.text_to_3d(prompt, seed=seed, text_steps=text_steps, width=size, height=size, steps=steps,
                                    resolution=resolution, faces=faces, grid_width=gw, grid_height=gh,
                                    progress=progress)

        return self.run(context, work)


class HUNYUAN_OT_reconstruct(HunyuanJobOperator, bpy.types.Operator):
    """Reconstruct a mesh from views with the Hunyuan3D-1.0 reconstruction model, imported at the 3D cursor"""

    bl_idname = "hunyuan.reconstruct_views"
    bl_label = "Reconstruct from views"

    blocking: bpy.props.BoolProperty(
        name="Blocking", default=False, options={"SKIP_SAVE"},
        description="Run in the foreground (scripts, tests, background mode) instead of a cancellable modal job")

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

        return self.run(context, work)


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
        gen = layout.box()
        gen.label(text="Generate from image")
        gen.prop(s, "weights_dir")
        gen.prop(s, "image_path")
        gen.prop(s, "image")
        row = gen.row()
        row.prop(s, "steps")
        row.prop(s, "seed")
        if not hasattr(hunyuan, "Generator"):
            gen.label(text="Not available in this build", icon="INFO")
        elif not s.running:
            gen.operator(HUNYUAN_OT_generate_image.bl_idname, icon="IMAGE_DATA")
        txt = layout.box()
        txt.label(text="Generate from prompt")
        txt.prop(s, "prompt_model")
        txt.prop(s, "prompt")
        row = txt.row()
        row.prop(s, "text_steps")
        row.prop(s, "image_size")
        if hasattr(hunyuan, "Generator") and not s.running:
            txt.operator(HUNYUAN_OT_generate_prompt.bl_idname, icon="FONT_DATA")
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


classes = (HunyuanSettings, HUNYUAN_OT_generate_image, HUNYUAN_OT_generate_prompt, HUNYUAN_OT_reconstruct, HUNYUAN_OT_cancel, VIEW3D_PT_hunyuan)


def register():
    for c in classes:
        bpy.utils.register_class(c)
    bpy.types.Scene.hunyuan = bpy.props.PointerProperty(type=HunyuanSettings)


def unregister():
    del bpy.types.Scene.hunyuan
    for c in reversed(classes):
        bpy.utils.unregister_class(c)
