#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// A fixed pool of worker threads for data-parallel loops. `threads` counts the calling thread, which
/// always takes part, so a pool of 1 runs everything inline. One loop runs at a time: a call made while
/// another loop is running (from another thread, or nested inside a loop body) runs inline on its
/// caller instead of waiting, so there is no deadlock. Workers spin briefly before sleeping, which keeps
/// the wake-up cost of short decode steps low.
public final class ThreadPool: @unchecked Sendable {
    public let threadCount: Int

    private var mutex = pthread_mutex_t()
    private var wake = pthread_cond_t()
    private var done = pthread_cond_t()
    private var callerLock = pthread_mutex_t()
    private var threads: [pthread_t] = []
    private var job: ((Int) -> Void)? = nil
    private var jobCount = 0
    private var stopping = false
    private let generation = Atomic<Int>(0)
    private let nextIndex = Atomic<Int>(0)
    private let active = Atomic<Int>(0)

    /// Number of online processors.
    public static var processorCount: Int { max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }

    /// Creates a pool of `threads` (≤ 0 means the number of processors; capped at 256).
    public init(threads: Int = 0) {
        threadCount = min(256, threads <= 0 ? Self.processorCount : threads)
        pthread_mutex_init(&mutex, nil)
        pthread_mutex_init(&callerLock, nil)
        pthread_cond_init(&wake, nil)
        pthread_cond_init(&done, nil)
        for _ in 1..<max(threadCount, 1) {
            let box = Unmanaged.passRetained(WorkerStart(pool: self))
            var t = pthread_t()
            let rc = pthread_create(&t, nil, { arg in
                let start = Unmanaged<WorkerStart>.fromOpaque(arg!).takeRetainedValue()
                start.pool?.workerLoop()
                return nil
            }, box.toOpaque())
            if rc == 0 { self.threads.append(t) } else { box.release() }
        }
    }

    deinit {
        pthread_mutex_lock(&mutex)
        stopping = true
        generation.wrappingAdd(1, ordering: .sequentiallyConsistent)
        pthread_cond_broadcast(&wake)
        pthread_mutex_unlock(&mutex)
        for t in threads { pthread_join(t, nil) }
        pthread_mutex_destroy(&mutex)
        pthread_mutex_destroy(&callerLock)
        pthread_cond_destroy(&wake)
        pthread_cond_destroy(&done)
    }

    private final class WorkerStart {
        weak var pool: ThreadPool?
        init(pool: ThreadPool) { self.pool = pool }
    }

    private func workerLoop() {
        var seen = 0
        while true {
            // Spin a little for the next job before sleeping.
            var spins = 0
            while generation.load(ordering: .acquiring) == seen && spins < 20_000 { spins += 1 }
            pthread_mutex_lock(&mutex)
            while generation.load(ordering: .acquiring) == seen && !stopping {
                pthread_cond_wait(&wake, &mutex)
            }
            if stopping { pthread_mutex_unlock(&mutex); return }
            seen = generation.load(ordering: .acquiring)
            var body = job
            let n = jobCount
            pthread_mutex_unlock(&mutex)
            if body != nil {
                while true {
                    let i = nextIndex.wrappingAdd(1, ordering: .relaxed).oldValue
                    if i >= n { break }
                    body?(i)
                }
            }
            // Drop our reference before reporting completion: the caller's withoutActuallyEscaping
            // traps if the closure is still referenced when parallelFor returns.
            body = nil
            if active.subtract(1, ordering: .acquiringAndReleasing).newValue == 0 {
                pthread_mutex_lock(&mutex)
                pthread_cond_signal(&done)
                pthread_mutex_unlock(&mutex)
            }
        }
    }

    /// Runs `body(i)` for every i in 0..<n, spread over the pool; returns when all have finished.
    /// `body` must be safe to call concurrently for different i.
    public func parallelFor(_ n: Int, _ body: (Int) -> Void) {
        if n <= 0 { return }
        if threads.isEmpty || n == 1 || pthread_mutex_trylock(&callerLock) != 0 {
            for i in 0..<n { body(i) }
            return
        }
        defer { pthread_mutex_unlock(&callerLock) }
        withoutActuallyEscaping(body) { b in
            pthread_mutex_lock(&mutex)
            job = b
            jobCount = n
            nextIndex.store(0, ordering: .relaxed)
            active.store(threads.count, ordering: .relaxed)
            generation.wrappingAdd(1, ordering: .sequentiallyConsistent)
            pthread_cond_broadcast(&wake)
            pthread_mutex_unlock(&mutex)
            while true {
                let i = nextIndex.wrappingAdd(1, ordering: .relaxed).oldValue
                if i >= n { break }
                b(i)
            }
            var spins = 0
            while active.load(ordering: .acquiring) > 0 && spins < 100_000 { spins += 1 }
            pthread_mutex_lock(&mutex)
            while active.load(ordering: .acquiring) > 0 { pthread_cond_wait(&done, &mutex) }
            job = nil
            pthread_mutex_unlock(&mutex)
        }
    }

    /// Splits 0..<n into at most `threadCount` contiguous ranges (each at least `minChunk` long when
    /// n allows) and runs `body` on each in parallel.
    public func parallelRanges(_ n: Int, minChunk: Int = 1, _ body: (Range<Int>) -> Void) {
        if n <= 0 { return }
        let parts = max(1, min(threadCount, n / max(minChunk, 1)))
        if parts == 1 { body(0..<n); return }
        parallelFor(parts) { p in
            let lo = n * p / parts, hi = n * (p + 1) / parts
            if lo < hi { body(lo..<hi) }
        }
    }
}
