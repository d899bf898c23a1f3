#if canImport(Glibc)
import Glibc
#endif

// The procedural shape world of the built-in text-to-3D model (`hunyuan3d-tiny`): primitives with exact
// signed distance functions, named colours, size and proportion words, one- and two-part scenes, and
// their captions in English and Chinese. Frame: y up, the scene inside the box [-1, 1]³; SDF < 0 inside
// (the SVRM decoder's NeuS sign). Everything is deterministic given a SplitMix64 stream.

/// A primitive shape. Its geometry comes from a horizontal half-extent `r` and a vertical half-extent
/// `h` (see `ShapePart`); every kind's SDF is exact (the Euclidean distance to its surface, negative
/// inside).
public enum ShapeKind: Int, CaseIterable, Sendable, Codable {
    case sphere, cube, roundedBox, torus, cylinder, cone, capsule, ellipsoid, pyramid, ring, octahedron

    /// English names; the first is canonical.
    public var english: [String] {
        switch self {
        case .sphere: return ["ball", "sphere"]
        case .cube: return ["box", "cube"]
        case .roundedBox: return ["rounded box", "rounded cube"]
        case .torus: return ["torus", "donut"]
        case .cylinder: return ["cylinder"]
        case .cone: return ["cone"]
        case .capsule: return ["capsule", "pill"]
        case .ellipsoid: return ["ellipsoid"]
        case .pyramid: return ["pyramid"]
        case .ring: return ["ring", "tube"]
        case .octahedron: return ["octahedron", "diamond"]
        }
    }

    /// Chinese names; the first is canonical.
    public var chinese: [String] {
        switch self {
        case .sphere: return ["球", "球体"]
        case .cube: return ["立方体", "盒子"]
        case .roundedBox: return ["圆角立方体", "圆角盒子"]
        case .torus: return ["圆环", "甜甜圈"]
        case .cylinder: return ["圆柱", "圆柱体"]
        case .cone: return ["圆锥", "圆锥体"]
        case .capsule: return ["胶囊"]
        case .ellipsoid: return ["椭球", "椭球体"]
        case .pyramid: return ["金字塔", "四棱锥"]
        case .ring: return ["圆管", "管子"]
        case .octahedron: return ["八面体", "钻石"]
        }
    }

    /// The size words this kind takes (a sphere has no proportions; a torus only gets thinner).
    public var sizes: [SizeWord] {
        switch self {
        case .sphere, .octahedron: return [.none, .large, .small]
        case .torus: return [.none, .large, .small, .thin]
        default: return SizeWord.allCases
        }
    }

    /// Genus of the surface (the number of handles): 1 for the torus and the ring, else 0.
    public var genus: Int { self == .torus || self == .ring ? 1 : 0 }
}

/// A named colour (linear RGB in [0, 1], what the decoder's colour head predicts).
public enum ShapeColor: Int, CaseIterable, Sendable, Codable {
    case red, green, blue, yellow, orange, purple, pink, white, black, gray, brown, cyan

    public var english: String {
        ["red", "green", "blue", "yellow", "orange", "purple", "pink", "white", "black", "gray", "brown", "cyan"][rawValue]
    }
    public var chinese: String {
        ["红色", "绿色", "蓝色", "黄色", "橙色", "紫色", "粉色", "白色", "黑色", "灰色", "棕色", "青色"][rawValue]
    }
    public var rgb: SIMD3<Float> {
        switch self {
        case .red: return SIMD3(0.85, 0.10, 0.10)
        case .green: return SIMD3(0.10, 0.65, 0.20)
        case .blue: return SIMD3(0.10, 0.25, 0.85)
        case .yellow: return SIMD3(0.95, 0.85, 0.10)
        case .orange: return SIMD3(0.95, 0.50, 0.05)
        case .purple: return SIMD3(0.55, 0.15, 0.70)
        case .pink: return SIMD3(0.95, 0.55, 0.70)
        case .white: return SIMD3(0.95, 0.95, 0.95)
        case .black: return SIMD3(0.08, 0.08, 0.08)
        case .gray: return SIMD3(0.50, 0.50, 0.50)
        case .brown: return SIMD3(0.50, 0.30, 0.12)
        case .cyan: return SIMD3(0.10, 0.80, 0.85)
        }
    }
}

/// A size or proportion word and what it does to a part's half-extents (r horizontal, h vertical).
public enum SizeWord: Int, CaseIterable, Sendable, Codable {
    case none, large, small, tall, flat, thin

    public var english: [String] {
        switch self {
        case .none: return [""]
        case .large: return ["large", "big"]
        case .small: return ["small"]
        case .tall: return ["tall"]
        case .flat: return ["flat"]
        case .thin: return ["thin"]
        }
    }
    public var chinese: String { ["", "大", "小", "高", "扁", "细"][rawValue] }

    /// Multipliers of (r, h).
    public var scale: (r: Float, h: Float) {
        switch self {
        case .none: return (1, 1)
        case .large: return (1.3, 1.3)
        case .small: return (0.7, 0.7)
        case .tall: return (1, 1.6)
        case .flat: return (1, 0.5)
        case .thin: return (0.6, 1)
        }
    }
}

/// How the two parts of a scene stand: the first on top of the second, or beside it (first on the left, −x).
public enum ShapeRelation: Int, CaseIterable, Sendable, Codable {
    case on, beside
}

/// One primitive placed in the scene: kind, colour, size word, half-extents and centre.
public struct ShapePart: Sendable, Equatable {
    public var kind: ShapeKind
    public var color: ShapeColor
    public var size: SizeWord
    /// Horizontal half-extent (x and z).
    public var r: Float
    /// The half-height parameter (the vertical half-extent for most kinds; see `halfHeight`).
    public var h: Float
    public var center: SIMD3<Float>

    /// A part of base half-extent `base` with the size word applied, centred at the origin.
    public init(kind: ShapeKind, color: ShapeColor, size: SizeWord, base: Float) {
        self.kind = kind; self.color = color; self.size = size
        let s = size.scale
        switch kind {
        case .sphere, .octahedron:
            r = base * s.r; h = r
        case .torus:
            // `thin` makes the tube thinner, not the ring smaller.
            r = base * (size == .thin ? 1 : s.r); h = r * (size == .thin ? 0.18 : 0.3)
        default:
            r = base * s.r; h = base * s.h
        }
        center = .zero
    }

    /// The vertical half-extent of the solid.
    public var halfHeight: Float {
        switch kind {
        case .sphere, .octahedron, .torus: return kind == .torus ? h : r
        case .ellipsoid: return 0.7 * h
        case .ring: return 0.45 * h
        case .capsule: return max(h, r)
        default: return h
        }
    }

    /// The exact signed distance at p (scene frame).
    public func sdf(_ p: SIMD3<Float>) -> Float {
        let q = p - center
        switch kind {
        case .sphere: return length(q) - r
        case .cube: return SDF.box(q, SIMD3(r, h, r))
        case .roundedBox:
            let k = 0.25 * min(r, h)
            return SDF.box(q, SIMD3(r - k, h - k, r - k)) - k
        case .torus:
            let minor = h, major = r - minor
            let a = SIMD2(length(SIMD2(q.x, q.z)) - major, q.y)
            return length(a) - minor
        case .cylinder:
            return SDF.box2(SIMD2(length(SIMD2(q.x, q.z)), q.y), SIMD2(r, h))
        case .cone:
            return SDF.triangle(SIMD2(length(SIMD2(q.x, q.z)), q.y), SIMD2(-r, -h), SIMD2(r, -h), SIMD2(0, h))
        case .capsule:
            let a = max(h - r, 0)
            return length(SIMD3(q.x, q.y - min(max(q.y, -a), a), q.z)) - r
        case .ellipsoid:
            return SDF.ellipsoid(q, SIMD3(r, 0.7 * h, 0.65 * r))
        case .pyramid:
            let s = 2 * r
            return SDF.pyramid((q - SIMD3(0, -h, 0)) / s, height: 2 * h / s) * s
        case .ring:
            let inner = 0.6 * r
            let rho = length(SIMD2(q.x, q.z))
            return SDF.box2(SIMD2(rho - 0.5 * (r + inner), q.y), SIMD2(0.5 * (r - inner), 0.45 * h))
        case .octahedron: return SDF.octahedron(q, r)
        }
    }
}

/// One or two parts: the scene a caption describes.
public struct ShapeScene: Sendable, Equatable {
    public var parts: [ShapePart]
    public var relation: ShapeRelation?

    /// Half-extent of a lone part, and of each part of a pair, before size words.
    public static let singleBase: Float = 0.45
    public static let pairBase: Float = 0.3
    /// Gap between the two parts (so the union's SDF stays exact: min of disjoint exact SDFs).
    public static let gapOn: Float = 0.06
    public static let gapBeside: Float = 0.12

    /// The given parts as they stand.
    public init(parts: [ShapePart], relation: ShapeRelation?) {
        self.parts = parts
        self.relation = relation
    }

    /// One part, centred.
    public init(_ kind: ShapeKind, _ color: ShapeColor, _ size: SizeWord = .none) {
        parts = [ShapePart(kind: kind, color: color, size: size, base: Self.singleBase)]
        relation = nil
    }

    /// Two parts: `a` on top of / beside `b` (each a (kind, colour, size) triple); the pair is centred.
    public init(_ a: (ShapeKind, ShapeColor, SizeWord), _ relation: ShapeRelation, _ b: (ShapeKind, ShapeColor, SizeWord)) {
        var pa = ShapePart(kind: a.0, color: a.1, size: a.2, base: Self.pairBase)
        var pb = ShapePart(kind: b.0, color: b.1, size: b.2, base: Self.pairBase)
        switch relation {
        case .on:
            let ha = pa.halfHeight, hb = pb.halfHeight
            let total = 2 * ha + Self.gapOn + 2 * hb
            pb.center = SIMD3(0, -total / 2 + hb, 0)
            pa.center = SIMD3(0, total / 2 - ha, 0)
        case .beside:
            let total = 2 * pa.r + Self.gapBeside + 2 * pb.r
            let ground = -max(pa.halfHeight, pb.halfHeight)
            pa.center = SIMD3(-total / 2 + pa.r, ground + pa.halfHeight, 0)
            pb.center = SIMD3(total / 2 - pb.r, ground + pb.halfHeight, 0)
        }
        parts = [pa, pb]
        self.relation = relation
    }

    /// Exact signed distance (the parts are disjoint, so the minimum is exact inside and out).
    public func sdf(_ p: SIMD3<Float>) -> Float {
        var d = Float.infinity
        for part in parts { d = min(d, part.sdf(p)) }
        return d
    }

    /// The colour of the nearest part (the surface colour at surface points).
    public func color(_ p: SIMD3<Float>) -> SIMD3<Float> {
        var best = Float.infinity, c = SIMD3<Float>(repeating: 0)
        for part in parts {
            let d = part.sdf(p)
            if d < best { best = d; c = part.color.rgb }
        }
        return c
    }

    /// Connected components and total genus of the surface.
    public var topology: (components: Int, genus: Int) { (parts.count, parts.reduce(0) { $0 + $1.kind.genus }) }

    /// A key identifying the combination of words (what the held-out split hashes).
    public var key: String {
        let p = parts.map { "\($0.kind.rawValue).\($0.color.rawValue).\($0.size.rawValue)" }
        return p.joined(separator: relation.map { $0 == .on ? "/on/" : "/beside/" } ?? "")
    }

    /// True for the combinations kept out of training (about 1 in 8, by a hash of `key`).
    public var isHeldOut: Bool {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in key.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return h % 8 == 3
    }

    /// A caption; `variant` picks among synonyms and phrasings (0 = canonical).
    public func caption(_ language: CaptionLanguage, variant: Int = 0) -> String {
        switch language {
        case .english:
            func np(_ p: ShapePart, _ v: Int) -> String {
                let names = p.kind.english, sizes = p.size.english
                let words = [sizes[v % sizes.count], p.color.english, names[(v / 2) % names.count]].filter { !$0.isEmpty }
                let first = words[0].unicodeScalars.first!
                let article = "aeiou".unicodeScalars.contains(first) ? "an" : "a"
                return ([article] + words).joined(separator: " ")
            }
            guard let relation, parts.count == 2 else { return np(parts[0], variant) }
            let link = relation == .on ? ["on", "on top of"][variant % 2] : ["beside", "next to"][variant % 2]
            return "\(np(parts[0], variant)) \(link) \(np(parts[1], variant / 3))"
        case .chinese:
            func np(_ p: ShapePart, _ v: Int, article: Bool) -> String {
                let names = p.kind.chinese
                return (article ? "一个" : "") + p.color.chinese + "的" + p.size.chinese + names[(v / 2) % names.count]
            }
            guard let relation, parts.count == 2 else { return np(parts[0], variant, article: variant % 3 != 2) }
            let link = relation == .on ? ["上面", "上"][variant % 2] : ["旁边", "的旁边"][variant % 2]
            return np(parts[0], variant, article: true) + "在" + np(parts[1], variant / 3, article: true) + link
        }
    }

    /// A random scene: one part (probability `singleShare`) or two of different colours.
    public static func random(_ rng: inout SplitMix64, singleShare: Double = 0.5) -> ShapeScene {
        func pick() -> (ShapeKind, ShapeColor, SizeWord) {
            let k = ShapeKind.allCases[rng.below(ShapeKind.allCases.count)]
            let c = ShapeColor.allCases[rng.below(ShapeColor.allCases.count)]
            return (k, c, k.sizes[rng.below(k.sizes.count)])
        }
        if rng.nextDouble() < singleShare {
            let a = pick()
            return ShapeScene(a.0, a.1, a.2)
        }
        let a = pick()
        var b = pick()
        while b.1 == a.1 { b.1 = ShapeColor.allCases[rng.below(ShapeColor.allCases.count)] }
        return ShapeScene(a, ShapeRelation.allCases[rng.below(2)], b)
    }

    /// Every single-part scene, in a fixed order.
    public static var allSingles: [ShapeScene] {
        ShapeKind.allCases.flatMap { k in ShapeColor.allCases.flatMap { c in k.sizes.map { ShapeScene(k, c, $0) } } }
    }
}

public enum CaptionLanguage: String, CaseIterable, Sendable {
    case english = "en", chinese = "zh"
}

/// Exact signed distance functions of the primitives (Íñigo Quílez's formulas where they are exact;
/// the ellipsoid by Eberly's robust bisection).
public enum SDF {
    /// Axis-aligned box of half-extents b.
    public static func box(_ p: SIMD3<Float>, _ b: SIMD3<Float>) -> Float {
        let q = vabs(p) - b
        return length(pointwiseMax(q, .zero)) + min(max(q.x, max(q.y, q.z)), 0)
    }

    /// 2-D rectangle of half-extents b.
    public static func box2(_ p: SIMD2<Float>, _ b: SIMD2<Float>) -> Float {
        let q = vabs(p) - b
        return length(pointwiseMax(q, .zero)) + min(max(q.x, q.y), 0)
    }

    /// 2-D triangle p0 p1 p2.
    public static func triangle(_ p: SIMD2<Float>, _ p0: SIMD2<Float>, _ p1: SIMD2<Float>, _ p2: SIMD2<Float>) -> Float {
        let e0 = p1 - p0, e1 = p2 - p1, e2 = p0 - p2
        let v0 = p - p0, v1 = p - p1, v2 = p - p2
        func seg(_ v: SIMD2<Float>, _ e: SIMD2<Float>) -> SIMD2<Float> { v - e * min(max(dot(v, e) / dot(e, e), 0), 1) }
        let pq0 = seg(v0, e0), pq1 = seg(v1, e1), pq2 = seg(v2, e2)
        let s: Float = e0.x * e2.y - e0.y * e2.x > 0 ? 1 : -1
        let d0 = SIMD2(dot(pq0, pq0), s * (v0.x * e0.y - v0.y * e0.x))
        let d1 = SIMD2(dot(pq1, pq1), s * (v1.x * e1.y - v1.y * e1.x))
        let d2 = SIMD2(dot(pq2, pq2), s * (v2.x * e2.y - v2.y * e2.x))
        let d = pointwiseMin(pointwiseMin(d0, d1), d2)
        return -d.x.squareRoot() * (d.y > 0 ? 1 : (d.y < 0 ? -1 : 0))
    }

    /// Square pyramid: base [-0.5, 0.5]² at y = 0, apex at (0, height, 0). Below the base plane the
    /// nearest point is on the base square (the solid lies in the prism above it); above it, Quílez's
    /// formula for the slanted faces, and inside also the base plane.
    public static func pyramid(_ p0: SIMD3<Float>, height h: Float) -> Float {
        if p0.y < 0 {
            let dx = max(abs(p0.x) - 0.5, 0), dz = max(abs(p0.z) - 0.5, 0)
            return (dx * dx + dz * dz + p0.y * p0.y).squareRoot()
        }
        let m2 = h * h + 0.25
        var px = abs(p0.x), pz = abs(p0.z)
        if pz > px { swap(&px, &pz) }
        px -= 0.5; pz -= 0.5
        let py = p0.y
        let qx = pz, qy = h * py - 0.5 * px, qz = h * px + 0.5 * py
        let s = max(-qx, 0)
        let t = min(max((qy - 0.5 * pz) / (m2 + 0.25), 0), 1)
        let a = m2 * (qx + s) * (qx + s) + qy * qy
        let b = m2 * (qx + 0.5 * t) * (qx + 0.5 * t) + (qy - m2 * t) * (qy - m2 * t)
        let d2: Float = min(qy, -qx * m2 - qy * 0.5) > 0 ? 0 : min(a, b)
        let sign: Float = max(qz, -py) >= 0 ? 1 : -1
        let d = ((d2 + qz * qz) / m2).squareRoot() * sign
        // Inside, the base plane may be nearer than every slanted face.
        return d < 0 ? max(d, -py) : d
    }

    /// Regular octahedron |x| + |y| + |z| = s.
    public static func octahedron(_ p0: SIMD3<Float>, _ s: Float) -> Float {
        let p = vabs(p0)
        let m = p.x + p.y + p.z - s
        let q: SIMD3<Float>
        if 3 * p.x < m { q = p } else if 3 * p.y < m { q = SIMD3(p.y, p.z, p.x) } else if 3 * p.z < m { q = SIMD3(p.z, p.x, p.y) } else {
            return m * 0.57735027
        }
        let k = min(max(0.5 * (q.z - q.y + s), 0), s)
        return length(SIMD3(q.x, q.y - s + k, q.z - k))
    }

    /// Ellipsoid of semi-axes e (Eberly, "Distance from a point to an ellipse, an ellipsoid, or a
    /// hyperellipsoid": bisection on the Lagrange multiplier in float64). Coordinates on a symmetry
    /// plane are moved 1e-7·e off it (the closest point may leave the plane); the error this adds is
    /// below float32 resolution.
    public static func ellipsoid(_ p: SIMD3<Float>, _ e: SIMD3<Float>) -> Float {
        // Sort the axes so e0 ≥ e1 ≥ e2, carrying the point's |coordinates| along.
        var a = (Double(e.x), Double(abs(p.x))), b = (Double(e.y), Double(abs(p.y))), c = (Double(e.z), Double(abs(p.z)))
        if a.0 < b.0 { swap(&a, &b) }
        if b.0 < c.0 { swap(&b, &c) }
        if a.0 < b.0 { swap(&a, &b) }
        let e0 = a.0, e1 = b.0, e2 = c.0
        let y0 = max(a.1, 1e-7 * e0), y1 = max(b.1, 1e-7 * e1), y2 = max(c.1, 1e-7 * e2)
        let z0 = y0 / e0, z1 = y1 / e1, z2 = y2 / e2
        let g = z0 * z0 + z1 * z1 + z2 * z2 - 1
        if g == 0 { return 0 }
        let r0 = (e0 / e2) * (e0 / e2), r1 = (e1 / e2) * (e1 / e2)
        let n0 = r0 * z0, n1 = r1 * z1
        var s0 = z2 - 1
        var s1 = g < 0 ? 0 : (n0 * n0 + n1 * n1 + z2 * z2).squareRoot() - 1
        var s = 0.0
        for _ in 0..<1100 {
            s = 0.5 * (s0 + s1)
            if s == s0 || s == s1 { break }
            let t0 = n0 / (s + r0), t1 = n1 / (s + r1), t2 = z2 / (s + 1)
            let gs = t0 * t0 + t1 * t1 + t2 * t2 - 1
            if gs > 0 { s0 = s } else if gs < 0 { s1 = s } else { break }
        }
        let x0 = r0 * y0 / (s + r0), x1 = r1 * y1 / (s + r1), x2 = y2 / (s + 1)
        let d = ((x0 - y0) * (x0 - y0) + (x1 - y1) * (x1 - y1) + (x2 - y2) * (x2 - y2)).squareRoot()
        return Float(g < 0 ? -d : d)
    }
}

@inline(__always) func vabs(_ v: SIMD3<Float>) -> SIMD3<Float> { pointwiseMax(v, -v) }
@inline(__always) func vabs(_ v: SIMD2<Float>) -> SIMD2<Float> { pointwiseMax(v, -v) }
@inline(__always) func length(_ v: SIMD3<Float>) -> Float { (v * v).sum().squareRoot() }
@inline(__always) func length(_ v: SIMD2<Float>) -> Float { (v * v).sum().squareRoot() }
@inline(__always) func dot(_ a: SIMD2<Float>, _ b: SIMD2<Float>) -> Float { (a * b).sum() }
