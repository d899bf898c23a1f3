import XCTest
import Glibc
import Hunyuan3D

/// The procedural shape world: every primitive's SDF is a true distance (checked against a brute-force
/// distance to a dense sample of its surface, and by the eikonal property), scenes, captions, split.
final class ShapeWorldTests: XCTestCase {
    /// Dense surface samples of a part: points of a fine grid near the surface projected by bisection
    /// along the segment to a neighbour of the other sign (independent of the SDF's distance values:
    /// only its sign is used).
    func surfaceSamples(_ part: ShapePart, step: Float = 0.01) -> [SIMD3<Float>] {
        var out: [SIMD3<Float>] = []
        let lim: Float = 0.8
        let n = Int(2 * lim / step)
        func inside(_ p: SIMD3<Float>) -> Bool { part.sdf(p) < 0 }
        for i in 0..<n {
            for j in 0..<n {
                for k in 0..<n {
                    let p = SIMD3(-lim + Float(i) * step, -lim + Float(j) * step, -lim + Float(k) * step)
                    let a = inside(p)
                    for d in [SIMD3<Float>(step, 0, 0), SIMD3(0, step, 0), SIMD3(0, 0, step)] where inside(p + d) != a {
                        var lo = p, hi = p + d
                        for _ in 0..<30 { let m = (lo + hi) / 2; if inside(m) == a { lo = m } else { hi = m } }
                        out.append((lo + hi) / 2)
                    }
                }
            }
        }
        return out
    }

    func testSDFIsTheDistanceToTheSurface() {
        var r = SplitMix64(seed: 4)
        for kind in ShapeKind.allCases {
            let part = ShapePart(kind: kind, color: .red, size: kind.sizes.last!, base: 0.45)
            let surface = surfaceSamples(part, step: 0.02)
            XCTAssertGreaterThan(surface.count, 1000, "\(kind)")
            var worst: Float = 0
            for _ in 0..<150 {
                let p = SIMD3(r.uniform(-0.8, 0.8), r.uniform(-0.8, 0.8), r.uniform(-0.8, 0.8))
                var best = Float.infinity
                for s in surface { let d = p - s; best = min(best, (d * d).sum()) }
                let brute = best.squareRoot()
                let d = part.sdf(p)
                // The samples are within ~1e-7 of the surface but 0.02 apart: the brute distance
                // overestimates by at most about step²/(8·curvature radius) + half a step along flat faces.
                worst = max(worst, abs(abs(d) - brute))
                XCTAssertEqual(abs(d), brute, accuracy: 0.016, "\(kind) at \(p)")
            }
            print("\(kind): \(surface.count) surface samples, worst |sdf − brute| \(worst)")
        }
    }

    func testEikonalAlmostEverywhere() {
        var r = SplitMix64(seed: 9)
        for kind in ShapeKind.allCases {
            for size in kind.sizes {
                let part = ShapePart(kind: kind, color: .blue, size: size, base: 0.45)
                var bad = 0
                let h: Float = 1e-3
                for _ in 0..<400 {
                    let p = SIMD3(r.uniform(-0.9, 0.9), r.uniform(-0.9, 0.9), r.uniform(-0.9, 0.9))
                    let g = SIMD3((part.sdf(p + SIMD3(h, 0, 0)) - part.sdf(p - SIMD3(h, 0, 0))) / (2 * h),
                                  (part.sdf(p + SIMD3(0, h, 0)) - part.sdf(p - SIMD3(0, h, 0))) / (2 * h),
                                  (part.sdf(p + SIMD3(0, 0, h)) - part.sdf(p - SIMD3(0, 0, h))) / (2 * h))
                    if abs((g * g).sum().squareRoot() - 1) > 0.02 { bad += 1 }
                }
                // Only points within h of the medial axis may break |∇d| = 1.
                XCTAssertLessThan(bad, 12, "\(kind) \(size): \(bad) of 400 points with |∇sdf| ≠ 1")
            }
        }
    }

    func testScenesFitTheBoxAndPartsAreDisjoint() {
        var r = SplitMix64(seed: 1)
        for _ in 0..<300 {
            let s = ShapeScene.random(&r)
            // Box faces are outside every part by a margin.
            for t in stride(from: Float(-1), through: 1, by: 0.1) {
                for u in stride(from: Float(-1), through: 1, by: 0.1) {
                    for p in [SIMD3(1, t, u), SIMD3(-1, t, u), SIMD3(t, 1, u), SIMD3(t, -1, u), SIMD3(t, u, 1), SIMD3(t, u, -1)] {
                        XCTAssertGreaterThan(s.sdf(p), 0.04, "\(s.caption(.english)) reaches the box at \(p)")
                    }
                }
            }
            if s.parts.count == 2 {
                // The parts stay apart: a point inside one is outside the other by the gap or more.
                let a = s.parts[0], b = s.parts[1]
                for _ in 0..<200 {
                    let p = a.center + SIMD3(r.uniform(-0.5, 0.5), r.uniform(-0.5, 0.5), r.uniform(-0.5, 0.5))
                    if a.sdf(p) < 0 { XCTAssertGreaterThan(b.sdf(p), 0, s.caption(.english)) }
                }
            }
        }
    }

    func testCaptions() {
        let s = ShapeScene((.sphere, .red, .none), .on, (.cube, .blue, .large))
        XCTAssertEqual(s.caption(.english), "a red ball on a large blue box")
        XCTAssertEqual(s.caption(.chinese), "一个红色的球在一个蓝色的大立方体上面")
        XCTAssertEqual(ShapeScene(.octahedron, .orange).caption(.english), "an orange octahedron")
        XCTAssertEqual(ShapeScene((.cone, .yellow, .tall), .beside, (.cylinder, .green, .none)).caption(.english, variant: 1),
                       "a tall yellow cone next to a green cylinder")
        // Roughly one in eight combinations is held out, and it is the same ones every time.
        let singles = ShapeScene.allSingles
        let held = singles.filter(\.isHeldOut).count
        XCTAssertGreaterThan(held, singles.count / 12)
        XCTAssertLessThan(held, singles.count / 5)
        XCTAssertEqual(s.topology.components, 2)
        XCTAssertEqual(ShapeScene(.torus, .red).topology.genus, 1)
    }
}
