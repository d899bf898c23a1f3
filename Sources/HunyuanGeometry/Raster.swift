#if canImport(Glibc)
import Glibc
#endif
import HunyuanImage

/// A small software rasterizer for preview images: perspective-free orthographic views, z-buffer,
/// Lambert + ambient shading of vertex colours (grey when the mesh has none). The result is an
/// `RGBAImage`; `PNGEncoder` (HunyuanImage) writes it.
public enum Raster {
    /// The four views of a preview: front, right side, top and a three-quarter view (yaw, pitch in
    /// degrees; y up, camera looking at the mesh centre).
    public static let previewViews: [(yaw: Float, pitch: Float)] = [(0, 0), (90, 0), (0, 89.9), (35, 25)]

    /// Renders `mesh` into a `size`×`size` RGBA image as a 2×2 grid of `previewViews`.
    /// Throws invalidArgument when size is outside 16...8192.
    public static func preview(_ mesh: Mesh, size: Int = 512, background: SIMD4<UInt8> = SIMD4(255, 255, 255, 255)) throws -> RGBAImage {
        guard size >= 16 && size <= 8192 else { throw HYError.invalidArgument("preview size \(size) must be in 16...8192") }
        try mesh.validate("preview mesh")
        var img = RGBAImage(width: size, height: size, fill: background)
        let half = size / 2
        for (k, v) in previewViews.enumerated() {
            render(mesh, into: &img, x0: (k % 2) * half, y0: (k / 2) * half, w: half, h: half, yaw: v.yaw, pitch: v.pitch)
        }
        return img
    }

    /// Renders one view into the rectangle (x0, y0, w, h) of `img`.
    public static func render(_ mesh: Mesh, into img: inout RGBAImage, x0: Int, y0: Int, w: Int, h: Int,
                              yaw: Float, pitch: Float) {
        let bb = mesh.bounds
        let center = (bb.min + bb.max) / 2
        let radius = max(simdLength(bb.max - bb.min) / 2, 1e-6)
        let cy = cosf(yaw * .pi / 180), sy = sinf(yaw * .pi / 180)
        let cp = cosf(pitch * .pi / 180), sp = sinf(pitch * .pi / 180)
        // Camera basis: rotate the view about y by yaw, then tilt by pitch.
        let forward = SIMD3<Float>(-sy * cp, -sp, -cy * cp)       // camera looks along forward
        let right = SIMD3<Float>(cy, 0, -sy)
        let up = simdCross(right, forward)
        let scale = Float(min(w, h)) * 0.45 / radius
        let light = simdNormalize(-forward + 0.5 * up + 0.3 * right)
        var depth = [Float](repeating: .infinity, count: w * h)
        let nv = mesh.vertexCount
        var sx = [Float](repeating: 0, count: nv), syy = [Float](repeating: 0, count: nv), sz = [Float](repeating: 0, count: nv)
        for i in 0..<nv {
            let p = mesh.vertex(i) - center
            sx[i] = Float(w) / 2 + simdDot(p, right) * scale
            syy[i] = Float(h) / 2 - simdDot(p, up) * scale
            sz[i] = simdDot(p, forward)
        }
        for f in 0..<mesh.faceCount {
            let a = Int(mesh.faces[3 * f]), b = Int(mesh.faces[3 * f + 1]), c = Int(mesh.faces[3 * f + 2])
            let n = simdNormalize(simdCross(mesh.vertex(b) - mesh.vertex(a), mesh.vertex(c) - mesh.vertex(a)))
            // Two-sided Lambert: a back face is lit as if seen from the front, slightly darker.
            let facing = simdDot(n, forward) < 0
            let lambert = max(0, simdDot(facing ? n : -n, light))
            let shade = 0.25 + 0.75 * lambert * (facing ? 1 : 0.7)
            let ax = sx[a], ay = syy[a], bx = sx[b], by = syy[b], cx = sx[c], cyy = syy[c]
            let area = (bx - ax) * (cyy - ay) - (by - ay) * (cx - ax)
            if abs(area) < 1e-12 { continue }
            if !(area.isFinite && ax.isFinite && ay.isFinite && bx.isFinite && by.isFinite && cx.isFinite && cyy.isFinite) { continue }
            let fw = Float(w - 1), fh = Float(h - 1)
            let minX = Int(max(0, min(fw, min(ax, bx, cx).rounded(.down)))), maxX = Int(max(-1, min(fw, max(ax, bx, cx).rounded(.up))))
            let minY = Int(max(0, min(fh, min(ay, by, cyy).rounded(.down)))), maxY = Int(max(-1, min(fh, max(ay, by, cyy).rounded(.up))))
            if minX > maxX || minY > maxY { continue }
            let ca = mesh.rgba(a), cb = mesh.rgba(b), cc = mesh.rgba(c)
            for py in minY...maxY {
                let fy = Float(py) + 0.5
                for px in minX...maxX {
                    let fx = Float(px) + 0.5
                    let w0 = ((bx - fx) * (cyy - fy) - (by - fy) * (cx - fx)) / area
                    let w1 = ((cx - fx) * (ay - fy) - (cyy - fy) * (ax - fx)) / area
                    let w2 = 1 - w0 - w1
                    if w0 < 0 || w1 < 0 || w2 < 0 { continue }
                    let z = w0 * sz[a] + w1 * sz[b] + w2 * sz[c]
                    let di = py * w + px
                    if z >= depth[di] { continue }
                    depth[di] = z
                    let col = (ca * w0 + cb * w1 + cc * w2) * shade
                    let o = ((y0 + py) * img.width + x0 + px) * 4
                    img.pixels[o] = colorToU8(col.x); img.pixels[o + 1] = colorToU8(col.y)
                    img.pixels[o + 2] = colorToU8(col.z); img.pixels[o + 3] = 255
                }
            }
        }
    }
}
