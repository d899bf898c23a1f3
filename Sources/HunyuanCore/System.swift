import CKernels
#if canImport(Glibc)
import Glibc
#endif

/// What this machine and build offer; kernels consult it to pick a path at run time.
public enum CPUFeatures {
    public static let avx2fma: Bool = hyi_cpu_has_avx2_fma()
    public static let avx512: Bool = hyi_cpu_has_avx512f()
    public static let avx512vnni: Bool = hyi_cpu_has_avx512_vnni()
    public static let avxvnni: Bool = hyi_cpu_has_avx_vnni()
    public static let avx512bf16: Bool = hyi_cpu_has_avx512_bf16()

    public static var summary: String {
        "AVX2=\(avx2fma ? 1 : 0) FMA=\(avx2fma ? 1 : 0) AVX512F=\(avx512 ? 1 : 0) "
            + "AVX512_VNNI=\(avx512vnni ? 1 : 0) AVX_VNNI=\(avxvnni ? 1 : 0) AVX512_BF16=\(avx512bf16 ? 1 : 0) BLAS=OpenBLAS "
            + "threads=\(ThreadPool.processorCount)"
    }
}

extension CPUFeatures {
    /// Bytes of physical memory of this machine.
    public static var physicalMemoryBytes: Int {
        Int(sysconf(Int32(_SC_PHYS_PAGES))) &* Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}

/// The library's release version (the C ABI's own version number lives with the ABI, in HunyuanCAPI).
public enum HunyuanVersion {
    public static let string = "0.1.0"
}
