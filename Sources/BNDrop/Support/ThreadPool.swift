import BNDropSystem
import Glibc
import Synchronization

/// The library's worker threads: a small persistent pool that runs the tasks of one parallel region at a
/// time, with the calling thread taking part.
///
/// **Determinism.** A caller splits its work into tasks by the size of the problem (fixed chunk sizes),
/// never by the number of threads, and each task writes only its own outputs (a reduction writes one
/// partial per task and the caller combines them in task order). Which thread runs which task then
/// cannot change a single bit of the result, so training is bit-identical for every thread count.
///
/// **Cost.** Workers spin briefly on an atomic generation counter before sleeping on a condition
/// variable, so the back-to-back regions of a training step start in well under a microsecond. A region
/// started while another runs (another thread's network, or a task that starts a region itself) runs
/// on its caller alone: correct, only not parallel.
///
/// The size is `sched_getaffinity`'s CPU count by default, `BNDROP_NUM_THREADS` when set, or what
/// `setThreadCount` chose. OpenBLAS is asked to stay single-threaded (see `BLAS`), so the two never
/// compete for the cores.
public final class ThreadPool: @unchecked Sendable {
    /// The pool every layer uses.
    public static let shared = ThreadPool(threads: ThreadPool.defaultThreadCount())

    /// The largest thread count accepted.
    public static let maxThreads = 256

    /// Threads that run tasks, the caller included.
    public var threadCount: Int { configuredThreads.load(ordering: .relaxed) }

    private let configuredThreads: Atomic<Int>
    /// The current region: its sequence number times `regionStride` plus the number of workers that
    /// take part. Workers wait for it to move; one atomic word, so a worker never pairs one region's
    /// number with another's participants.
    private let region = Atomic<Int>(0)
    private static let regionStride = 1024
    /// The next task index to hand out in the current region.
    private let nextTask = Atomic<Int>(0)
    /// Workers still inside the current region.
    private let activeWorkers = Atomic<Int>(0)
    /// 1 while a region runs: a second caller runs its tasks alone.
    private let busy = Atomic<Int>(0)

    private var mutex = pthread_mutex_t()
    private var wakeup = pthread_cond_t()
    /// Guarded by `mutex`.
    private var sleepers = 0
    private var workers: [pthread_t] = []

    // The current region, written before `region` moves and read only by its participating workers.
    private var taskCount = 0
    private var job: ((Int) -> Void)?

    init(threads: Int) {
        configuredThreads = Atomic(max(1, min(threads, ThreadPool.maxThreads)))
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&wakeup, nil)
    }

    /// The CPUs this process may run on (`sched_getaffinity`), or `BNDROP_NUM_THREADS` when it is set to
    /// a number from 1 to `maxThreads`.
    static func defaultThreadCount() -> Int {
        if let text = getenv("BNDROP_NUM_THREADS").map({ String(cString: $0) }), let n = Int(text),
           (1...maxThreads).contains(n) {
            return n
        }
        return Int(bndsys_available_cpus())
    }

    /// Uses `count` threads (the caller included) from the next region on.
    public func setThreadCount(_ count: Int) throws {
        guard (1...ThreadPool.maxThreads).contains(count) else {
            throw BNDError.invalidArgument("the thread count must be in 1...\(ThreadPool.maxThreads), got \(count)")
        }
        configuredThreads.store(count, ordering: .relaxed)
    }

    /// Runs `body(task)` for every task in `0..<tasks`, spread over the pool; returns when all are done.
    /// Tasks must be independent (see Determinism above).
    public func run(_ tasks: Int, _ body: (Int) -> Void) {
        let threads = min(threadCount, tasks)
        guard threads > 1, busy.compareExchange(expected: 0, desired: 1, ordering: .acquiring).exchanged else {
            for task in 0..<tasks { body(task) }
            return
        }
        defer { busy.store(0, ordering: .releasing) }
        startWorkers(threads - 1)
        withoutActuallyEscaping(body) { body in
            job = body
            taskCount = tasks
            nextTask.store(0, ordering: .relaxed)
            activeWorkers.store(threads - 1, ordering: .relaxed)
            let sequence = region.load(ordering: .relaxed) / ThreadPool.regionStride + 1
            region.store(sequence * ThreadPool.regionStride + threads - 1, ordering: .releasing)
            pthread_mutex_lock(&mutex)
            if sleepers > 0 { pthread_cond_broadcast(&wakeup) }
            pthread_mutex_unlock(&mutex)
            runTasks(body)
            while activeWorkers.load(ordering: .acquiring) > 0 { spinPause() }
            job = nil
        }
    }

    private func runTasks(_ body: (Int) -> Void) {
        while true {
            let task = nextTask.add(1, ordering: .relaxed).oldValue
            guard task < taskCount else { return }
            body(task)
        }
    }

    /// Makes sure at least `count` workers exist (they are never stopped; the pool lives as long as the
    /// process).
    private func startWorkers(_ count: Int) {
        while workers.count < count {
            let index = workers.count
            var thread = pthread_t()
            let context = Unmanaged.passRetained(WorkerContext(pool: self, index: index)).toOpaque()
            guard pthread_create(&thread, nil, { raw in
                let context = Unmanaged<WorkerContext>.fromOpaque(raw!).takeRetainedValue()
                context.pool.workerLoop(index: context.index)
                return nil
            }, context) == 0 else {
                Unmanaged<WorkerContext>.fromOpaque(context).release()
                return  // fewer workers: the caller's share grows, results are the same
            }
            pthread_detach(thread)
            workers.append(thread)
        }
    }

    private func workerLoop(index: Int) {
        var seen = region.load(ordering: .acquiring)
        while true {
            // Spin a little: the next region of a training step usually follows within microseconds.
            var spins = 0
            var current = region.load(ordering: .acquiring)
            while current == seen && spins < 20_000 {
                spinPause()
                spins += 1
                current = region.load(ordering: .acquiring)
            }
            if current == seen {
                pthread_mutex_lock(&mutex)
                while region.load(ordering: .acquiring) == seen {
                    sleepers += 1
                    pthread_cond_wait(&wakeup, &mutex)
                    sleepers -= 1
                }
                pthread_mutex_unlock(&mutex)
                current = region.load(ordering: .acquiring)
            }
            seen = current
            // Only the first workers join a region (as many as it asked for); the others wait again.
            guard index < current % ThreadPool.regionStride, let body = job else { continue }
            runTasks(body)
            activeWorkers.subtract(1, ordering: .releasing)
        }
    }

    @inline(__always)
    private func spinPause() {
        // Swift has no portable pause instruction; an atomic load keeps the loop from being optimised away.
        _ = region.load(ordering: .relaxed)
    }
}

private final class WorkerContext {
    let pool: ThreadPool
    let index: Int
    init(pool: ThreadPool, index: Int) {
        self.pool = pool
        self.index = index
    }
}
