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
/// **Cost.** Workers spin on an atomic region word (alone on its cache line) for 0.3 ms before sleeping
/// on a condition variable, so the back-to-back regions of a training step start in well under a
/// microsecond. A region
/// started while another runs (another thread's network, or a task that starts a region itself) runs
/// on its caller alone: correct, only not parallel.
///
/// **Background work.** Besides regions, a caller may offer work it will need later as a background job
/// (`postBackground`): idle workers run its chunks while no region needs them, in the serial stretches
/// of a training step where they would only wait (the loader's next batch; see Background work below).
///
/// The size is `sched_getaffinity`'s CPU count by default, `BNDROP_NUM_THREADS` when set, or what
/// `setThreadCount` chose. OpenBLAS is asked to stay single-threaded (see `BLAS`), so the two never
/// compete for the cores.
public final class ThreadPool: @unchecked Sendable {
    /// The pool every layer uses.
    public static let shared = ThreadPool.makeShared()

    /// The largest thread count accepted.
    public static let maxThreads = 256

    /// Threads that run tasks, the caller included.
    public var threadCount: Int { configuredThreads.load(ordering: .relaxed) }

    private let configuredThreads: Atomic<Int>
    /// 1 while a region runs: a second caller runs its tasks alone.
    private let busy = Atomic<Int>(0)
    /// 1 from a fork's start to its end (see fork below): regions run on their caller alone meanwhile and
    /// background jobs are not offered, so that the forking thread does not wait behind a stream of them.
    private let forkPending = Atomic<Int>(0)

    // The words below each sit on a cache line of their own (the stored properties of a class are laid
    // out in order; padding between them): idle workers spin reading `region`, and the caller writes
    // `claims` and `completed` several times per region. On one shared line each of those writes had
    // to take the line back from every spinning worker.
    private let padding0 = CacheLinePadding()
    /// The current region: its sequence number times `regionStride` plus the number of workers that
    /// take part. Workers wait for it to move; one atomic word, so a worker never pairs one region's
    /// number with another's participants.
    private let region = Atomic<Int>(0)
    private static let regionStride = 1024
    private let padding1 = CacheLinePadding()
    /// The region's sequence number and the range of tasks not yet handed out, in one double word
    /// (`Claims`). A task is claimed by compare-and-swap on both words, so a worker still finishing a
    /// region, or waking late after it ended, can neither read another region's range nor claim one of
    /// its tasks, however many regions ran meanwhile: the whole sequence number is compared. (A 20-bit
    /// tag beside the range in one word came back every 2^20 regions, a few seconds of training: a
    /// worker stalled for exactly that many could have joined a region that had not asked for it, with
    /// a thread index past the kernel's per-thread scratch.) The caller takes tasks from the front of the
    /// range; the workers take them from its back (`TaskOrder.fromBothEnds`) or from its front too
    /// (`.inOrder`).
    private let claims = Atomic<WordPair>(Claims.none)
    /// Whether the workers of the current region take tasks from the back (set before `claims` moves).
    private let workersFromBack = Atomic<Bool>(true)
    private let padding2 = CacheLinePadding()
    /// Tasks of the current region that have finished. The caller waits for all of them, not for the
    /// workers: a worker still waking up costs nothing.
    private let completed = Atomic<Int>(0)
    private let padding3 = CacheLinePadding()
    /// The background job's sequence number and its chunks not yet handed out, laid out as `claims`
    /// (see Background work below).
    private let backgroundClaims = Atomic<WordPair>(Claims.none)
    private let padding4 = CacheLinePadding()
    /// Chunks of the background job that have finished.
    private let backgroundCompleted = Atomic<Int>(0)
    private let padding5 = CacheLinePadding()
    /// The sequence number of the last background job all of whose chunks have finished, shifted left by
    /// one, and in the low bit 1 while a job is out (some chunk not yet finished; another job offered
    /// meanwhile runs on its caller). One word, so that a job's end shows both at once: a caller that saw
    /// its job done may offer the next at once. (Jobs finish in the order offered: one at a time.)
    private let backgroundState = Atomic<Int>(0)
    /// Workers started so far (`workers.count`, readable outside a region).
    private let startedWorkers = Atomic<Int>(0)

    /// Allocated once, never moved: pthread objects must keep their address (a Swift property's
    /// address is not guaranteed to be stable).
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let wakeup = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    /// Guarded by `mutex`.
    private var sleepers = 0
    private var workers: [pthread_t] = []

    // The current region's work, written before `claims` and `region` move; read only after a
    // successful claim (which the caller's wait for every task orders before its next write).
    private var job: ParallelWork?
    /// The background job's work and its number of chunks, written before `backgroundClaims` moves; read
    /// only after a successful claim (the job's last chunk to finish clears the work and frees the slot
    /// before the next job can write them).
    private var backgroundJob: ParallelWork?
    private var backgroundChunks = 0

    init(threads: Int) {
        configuredThreads = Atomic(max(1, min(threads, ThreadPool.maxThreads)))
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(wakeup, nil)
    }

    // MARK: fork
    //
    // A process that forks (Python's multiprocessing does by default on Linux) gets a child with only the
    // forking thread: the pool's workers are gone, and whatever they held at that instant (the mutex, a
    // background chunk half done) would stay held in the child: its first region or its loader's next
    // batch would wait forever. So the shared pool takes part in fork (pthread_atfork, registered when it
    // is made): before the fork the forking thread waits for a region under way to end and keeps others
    // from starting, finishes the background job if one is out (running its chunks no worker took) and
    // keeps others from being offered, and takes the mutex; after it, the parent lets all of that go, and
    // the child starts with no workers (it starts its own at its first region), no sleepers and a fresh
    // mutex and condition. Meanwhile regions run on their callers alone and no job is offered
    // (`forkPending`), so the parent waits at most for the region and the job under way when it began.

    private func prepareForFork() {
        forkPending.store(1, ordering: .sequentiallyConsistent)
        while !busy.compareExchange(expected: 0, desired: 1, ordering: .acquiring).exchanged { spinPause() }
        while true {
            let state = backgroundState.load(ordering: .acquiring)
            if state & 1 == 0 {
                // No job out: hold the "out" bit, so that none is offered across the fork.
                if backgroundState.compareExchange(expected: state, desired: state | 1, ordering: .acquiring).exchanged {
                    break
                }
                continue
            }
            // A job is out: complete it, as its owner's finish would.
            completeBackground(Claims.sequence(of: backgroundClaims.load(ordering: .acquiring)))
        }
        pthread_mutex_lock(mutex)
    }

    private func resumeAfterFork(inChild: Bool) {
        if inChild {
            pthread_mutex_init(mutex, nil)  // (the parent's, locked by this very thread, is not used again)
            pthread_cond_init(wakeup, nil)
            sleepers = 0
            workers = []
            startedWorkers.store(0, ordering: .releasing)
        } else {
            pthread_mutex_unlock(mutex)
        }
        backgroundState.store(backgroundState.load(ordering: .relaxed) & ~1, ordering: .releasing)
        busy.store(0, ordering: .releasing)
        forkPending.store(0, ordering: .releasing)
    }

    /// Registers the shared pool's fork handlers (once, when the pool is made).
    private static func makeShared() -> ThreadPool {
        let pool = ThreadPool(threads: ThreadPool.defaultThreadCount())
        pthread_atfork({ ThreadPool.shared.prepareForFork() },
                       { ThreadPool.shared.resumeAfterFork(inChild: false) },
                       { ThreadPool.shared.resumeAfterFork(inChild: true) })
        return pool
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

    /// Runs `work.perform(task, thread:)` for every task in `0..<tasks`, spread over at most
    /// `threadLimit` threads (`thread` is 0 for the caller, 1... for workers); returns when all
    /// are done. Tasks must be independent (see Determinism above). The work is an object made once (a
    /// `ParallelKernel`), not a closure: handing a closure to other threads would allocate at every call,
    /// and a training step allocates nothing.
    func run(_ tasks: Int, _ work: ParallelWork, threadLimit: Int, order: TaskOrder = .fromBothEnds) {
        let threads = min(threadLimit, threadCount, tasks)
        guard threads > 1, tasks <= Claims.maxTasks, forkPending.load(ordering: .relaxed) == 0,
              busy.compareExchange(expected: 0, desired: 1, ordering: .acquiring).exchanged else {
            for task in 0..<tasks { work.perform(task, thread: 0) }
            return
        }
        defer { busy.store(0, ordering: .releasing) }
        startWorkers(threads - 1)
        job = work
        completed.store(0, ordering: .relaxed)
        workersFromBack.store(order == .fromBothEnds, ordering: .relaxed)
        let sequence = region.load(ordering: .relaxed) / ThreadPool.regionStride + 1
        claims.store(Claims.word(sequence: sequence, front: 0, back: tasks), ordering: .releasing)
        region.store(sequence * ThreadPool.regionStride + threads - 1, ordering: .releasing)
        pthread_mutex_lock(mutex)
        if sleepers > 0 { pthread_cond_broadcast(wakeup) }
        pthread_mutex_unlock(mutex)
        while let task = claim(sequence, fromFront: true) {
            work.perform(task, thread: 0)
            completed.add(1, ordering: .releasing)
        }
        while completed.load(ordering: .acquiring) < tasks { spinPause() }
        job = nil
    }

    /// The first (`fromFront`) or last unclaimed task of region `sequence`, or nil when none is left or the
    /// region is over.
    @inline(__always)
    private func claim(_ sequence: Int, fromFront: Bool) -> Int? {
        ThreadPool.claim(from: claims, sequence, fromFront: fromFront)
    }

    /// The first (`fromFront`) or last unclaimed item of job `sequence` in `word` (`claims` or
    /// `backgroundClaims`), or nil when none is left or the job is over.
    @inline(__always)
    private static func claim(from word: borrowing Atomic<WordPair>, _ sequence: Int, fromFront: Bool) -> Int? {
        var current = word.load(ordering: .acquiring)
        while Claims.sequence(of: current) == sequence {
            let (front, back) = Claims.range(current)
            guard front < back else { return nil }
            let task = fromFront ? front : back - 1
            let desired = fromFront ? Claims.word(sequence: sequence, front: front + 1, back: back)
                                    : Claims.word(sequence: sequence, front: front, back: back - 1)
            let (exchanged, original) = word.compareExchange(expected: current, desired: desired,
                                                             ordering: .acquiringAndReleasing)
            if exchanged { return task }
            current = original
        }
        return nil
    }

    /// A worker's share of region `sequence`: claims and runs one task. The work is read inside this call
    /// and released before the task counts as completed.
    @inline(never)
    private func runClaimedTask(_ sequence: Int, thread: Int) -> Bool {
        let fromFront = !workersFromBack.load(ordering: .relaxed)
        guard let task = claim(sequence, fromFront: fromFront), let work = job else { return false }
        work.perform(task, thread: thread)
        return true
    }

    /// Makes sure at least `count` workers exist (they are never stopped; the pool lives as long as the
    /// process).
    private func startWorkers(_ count: Int) {
        while workers.count < count {
            let index = workers.count
            var thread = pthread_t()
            // The worker starts from the region as it is now, before the caller moves it: a thread that
            // starts late must still see the region it was created for as new.
            let start = region.load(ordering: .acquiring)
            let context = Unmanaged.passRetained(WorkerContext(pool: self, index: index, start: start)).toOpaque()
            guard pthread_create(&thread, nil, { raw in
                let context = Unmanaged<WorkerContext>.fromOpaque(raw!).takeRetainedValue()
                context.pool.workerLoop(index: context.index, seen: context.start)
                return nil
            }, context) == 0 else {
                Unmanaged<WorkerContext>.fromOpaque(context).release()
                return  // fewer workers: the caller's share grows, results are the same
            }
            pthread_detach(thread)
            workers.append(thread)
            startedWorkers.store(workers.count, ordering: .releasing)
        }
    }

    private func workerLoop(index: Int, seen start: Int) {
        var seen = start
        while true {
            // Spin a while: the next region of a training step usually follows within microseconds, or
            // after a serial stretch of tens of microseconds (batches of 64); waking a sleeping worker
            // costs the caller a system call and the region several microseconds.
            var current = region.load(ordering: .acquiring)
            var start = timespec(), now = timespec()
            clock_gettime(CLOCK_MONOTONIC, &start)
            var spins = 0
            while current == seen {
                // Between regions, a chunk of the background job if one is out (the spin restarts after it).
                if runBackgroundChunk(index: index) {
                    clock_gettime(CLOCK_MONOTONIC, &start)
                    spins = 0
                } else {
                    spinPause()
                    spins &+= 1
                    if spins % 1024 == 0 {
                        clock_gettime(CLOCK_MONOTONIC, &now)
                        let elapsed = (now.tv_sec - start.tv_sec) * 1_000_000_000 + (now.tv_nsec - start.tv_nsec)
                        if elapsed > ThreadPool.spinNanoseconds { break }
                    }
                }
                current = region.load(ordering: .acquiring)
            }
            if current == seen {
                pthread_mutex_lock(mutex)
                while region.load(ordering: .acquiring) == seen && !backgroundOffered(to: index) {
                    sleepers += 1
                    pthread_cond_wait(wakeup, mutex)
                    sleepers -= 1
                }
                pthread_mutex_unlock(mutex)
                current = region.load(ordering: .acquiring)
                if current == seen { continue }  // woken for background work
            }
            seen = current
            // Only the first workers join a region (as many as it asked for); the others wait again.
            guard index < current % ThreadPool.regionStride else { continue }
            let sequence = current / ThreadPool.regionStride
            while runClaimedTask(sequence, thread: index + 1) { completed.add(1, ordering: .releasing) }
        }
    }

    // MARK: Background work
    //
    // A caller that knows work it will need later (the loader's next batch) offers it as a background job
    // of small independent chunks and goes on. Idle workers take its chunks one at a time whenever no region
    // needs them: in a training step, while the calling thread runs the serial stretches (the small layers,
    // the loss, the optimizer) during which they would only wait. A region started meanwhile runs as
    // usual, a worker busy with a chunk joining it when the chunk is done. `finishBackground` runs the
    // chunks no worker took on the caller and waits for the ones under way. One job at a time: another
    // caller's job, offered while one is out, runs whole in its own `finishBackground`, as does every job
    // with one thread. A job is out until its last chunk finishes, whoever runs it, not until its caller
    // calls `finishBackground`: a caller that stops asking for its work (a loader abandoned mid-epoch,
    // kept for later) would otherwise hold the pool's one job and leave every other caller without
    // background work. Chunks must write disjoint outputs and use no per-thread scratch (they run beside
    // the caller's regions, whatever thread index they get): where they run then changes no result. And
    // a job must not reference the object whose deinit finishes it (the loader): a worker holding that
    // object's last reference in a chunk would run the deinit, and wait for its own chunk, itself.

    /// Offers `chunks` chunks of `work` to idle workers; `finishBackground(ticket)` runs what they left.
    func postBackground(_ chunks: Int, _ work: ParallelWork) -> BackgroundTicket {
        let state = backgroundState.load(ordering: .relaxed)
        guard chunks > 0, chunks <= Claims.maxTasks, threadCount > 1, startedWorkers.load(ordering: .acquiring) > 0,
              state & 1 == 0, forkPending.load(ordering: .relaxed) == 0,
              backgroundState.compareExchange(expected: state, desired: state | 1, ordering: .acquiring).exchanged else {
            return BackgroundTicket(sequence: 0, chunks: max(chunks, 0), work: work, offered: false)
        }
        backgroundJob = work
        backgroundChunks = chunks
        backgroundCompleted.store(0, ordering: .relaxed)
        let sequence = Claims.sequence(of: backgroundClaims.load(ordering: .relaxed)) + 1
        backgroundClaims.store(Claims.word(sequence: sequence, front: 0, back: chunks), ordering: .releasing)
        pthread_mutex_lock(mutex)
        if sleepers > 0 { pthread_cond_broadcast(wakeup) }
        pthread_mutex_unlock(mutex)
        return BackgroundTicket(sequence: sequence, chunks: chunks, work: work, offered: true)
    }

    /// Returns once every chunk of `ticket`'s job has run: those no worker took, on the calling thread.
    func finishBackground(_ ticket: BackgroundTicket) {
        guard ticket.offered else {
            for chunk in 0..<ticket.chunks { ticket.work.perform(chunk, thread: 0) }
            return
        }
        completeBackground(ticket.sequence)
    }

    /// Runs the chunks of background job `sequence` that no worker took, on the calling thread, and waits
    /// until all of its chunks have finished (at once when the job is over). After a successful claim
    /// `backgroundJob` is that job's work: the job cannot end before the claimed chunk is counted.
    private func completeBackground(_ sequence: Int) {
        while let chunk = ThreadPool.claim(from: backgroundClaims, sequence, fromFront: true) {
            backgroundJob?.perform(chunk, thread: 0)
            backgroundChunkFinished(sequence: sequence)
        }
        while backgroundState.load(ordering: .acquiring) >> 1 < sequence { spinPause() }
    }

    /// Counts a finished chunk of job `sequence`; the last one clears the job and frees the slot for the
    /// next. (The count's read-modify-writes order every chunk's writes before the last one's release of
    /// `backgroundState`, which `finishBackground` acquires.)
    private func backgroundChunkFinished(sequence: Int) {
        let chunks = backgroundChunks  // (read first: once the count reaches it, the next job may rewrite it)
        guard backgroundCompleted.add(1, ordering: .acquiringAndReleasing).newValue == chunks else { return }
        backgroundJob = nil
        backgroundState.store(sequence << 1, ordering: .releasing)  // (done, and no job out)
    }

    /// Whether worker `index` may take a chunk of the background job now (one is left, and the worker
    /// is among the configured threads).
    private func backgroundOffered(to index: Int) -> Bool {
        let (front, back) = Claims.range(backgroundClaims.load(ordering: .acquiring))
        return front < back && index < threadCount - 1
    }

    /// Worker `index` claims and runs one chunk of the background job; false when none is left for it.
    @inline(never)
    private func runBackgroundChunk(index: Int) -> Bool {
        guard backgroundOffered(to: index) else { return false }
        let sequence = Claims.sequence(of: backgroundClaims.load(ordering: .acquiring))
        guard let chunk = ThreadPool.claim(from: backgroundClaims, sequence, fromFront: true) else { return false }
        backgroundJob?.perform(chunk, thread: index + 1)
        backgroundChunkFinished(sequence: sequence)
        return true
    }

    /// How long an idle worker spins before it sleeps (0.3 ms; OpenBLAS's own threads spin about 0.1 s).
    /// Against the earlier 20,000 loads (a few microseconds), an epoch of the article's MLP in batches
    /// of 64 took 9% less time; the other workloads of `make bench` did not change.
    static let spinNanoseconds = 300_000

    /// One turn of a spin-wait: the CPU's pause hint. A bare loop of loads takes execution units and load
    /// slots from the thread it waits for when both share a core (SMT siblings, which the default thread
    /// count includes), and a hypervisor cannot tell it from work. On the project's 2-vCPU KVM machine
    /// (no siblings) it changed nothing beyond the machine's noise: alternating with the bare loop, the
    /// medians of the ratios were 0.91-1.07 on MLP-BN training and inference, the MLP-BN epoch in batches
    /// of 64 and the dropout regression (6-16 rounds each, single rounds 0.6-1.7).
    @inline(__always)
    private func spinPause() { bndsys_spin_pause() }
}

/// 56 bytes of nothing: placed between two 8-byte atomic words, keeps them on different 64-byte lines.
private struct CacheLinePadding {
    private let words: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0)
}

private final class WorkerContext {
    let pool: ThreadPool
    let index: Int
    /// The region value when the worker was created.
    let start: Int
    init(pool: ThreadPool, index: Int, start: Int) {
        self.pool = pool
        self.index = index
        self.start = start
    }
}

/// The order in which the threads of a region take its tasks (which thread runs which task changes no
/// bit of the result either way).
enum TaskOrder {
    /// The caller from the first task up, the workers from the last one down. Regions that split the same
    /// rows or samples into the same tasks, one layer after the other, then give each thread mostly the
    /// tasks it had in the region before, whose data are still in its core's caches. When the host runs
    /// the two virtual CPUs on distant cores (a cache line takes 320-370 ns from one to the other instead
    /// of 55-80: bench/NOTES.md), that kept the article's CNN epoch at 0.43-0.46 s where tasks handed out
    /// in order took 0.54-0.55 s (its eval pass: 0.019 s against 0.026); with the cores close, within
    /// noise (0.98-1.00 of the time).
    case fromBothEnds
    /// Every thread from the first task up, so that the threads work on neighbouring tasks at the same
    /// time: BatchNorm's groups of channels on N×C rows (each a strided walk through the whole batch; split
    /// so on 256×64×28×28, from both ends took 1.04x the time).
    case inOrder
}

/// A background job offered to the pool (`ThreadPool.postBackground`), to be finished by its caller.
struct BackgroundTicket {
    let sequence: Int
    let chunks: Int
    let work: ParallelWork
    /// false: the pool did not take it (one thread, no worker yet, another job out); `finishBackground`
    /// runs all of it.
    let offered: Bool
}

/// The layout of `ThreadPool.claims`: the region's sequence number (first word; 0 before the first region)
/// and the tasks still to be handed out, [front, back) (second word: front << 32 | back).
private enum Claims {
    static let maxTasks = Int(Int32.max)
    static let none = WordPair(first: 0, second: 0)

    static func word(sequence: Int, front: Int, back: Int) -> WordPair {
        WordPair(first: UInt(bitPattern: sequence), second: UInt(front) << 32 | UInt(back))
    }
    static func sequence(of word: WordPair) -> Int { Int(bitPattern: word.first) }
    /// The tasks of `word` still to be handed out: [front, back).
    static func range(_ word: WordPair) -> (front: Int, back: Int) {
        (Int(word.second >> 32), Int(word.second & 0xFFFF_FFFF))
    }
}

/// What the pool runs: one task at a time, by index.
protocol ParallelWork: AnyObject {
    /// Runs task `task` on thread `thread` (0 for the caller, then 1, 2, ... below the region's thread
    /// count): a task may use per-thread scratch, never per-thread results.
    func perform(_ task: Int, thread: Int)
}

/// One parallel kernel of a layer: its code, made once when the layer is built, and the arguments of
/// the current call, set by `run`. Running it allocates nothing.
final class ParallelKernel<Arguments>: ParallelWork {
    private let body: (Arguments, Int, Int) -> Void
    private var arguments: Arguments?

    /// `body(arguments, task)` must not hold its layer strongly: the layer owns the kernel. Layers
    /// capture themselves `unowned(unsafe)`: the kernel runs only inside the layer's own methods, so the
    /// layer is alive, and plain `unowned` cost a checked retain and release per task (1-2% of a
    /// training step of the article's MLP).
    convenience init(_ body: @escaping (Arguments, Int) -> Void) {
        self.init(perThread: { arguments, task, _ in body(arguments, task) })
    }

    /// A kernel whose body also gets the thread it runs on, to pick that thread's scratch space.
    init(perThread body: @escaping (Arguments, Int, Int) -> Void) { self.body = body }

    /// Less work than this (multiply-adds or element operations) runs on the calling thread: waking a
    /// worker would cost more than it saves. At 2^18 or 2^19, where the article's dropout regression
    /// splits its 50 x 100 x 100 products, that workload took up to 1.24x the time.
    static var minimumParallelWork: Int { 1 << 20 }

    /// Whether `run` offers `tasks` tasks estimated at `work` operations to the pool (it then runs them
    /// on as many threads as it has free, one when the pool is busy), rather than on the calling thread.
    static func offersPool(tasks: Int, work: Int) -> Bool { tasks > 1 && work >= minimumParallelWork }

    /// Runs `body(arguments, task, thread)` for every task in `0..<tasks` on the shared pool, on at most
    /// `threads` threads (so per-thread scratch sized for `threads` suffices); `work` estimates the
    /// whole call's operations. The tasks are the same either way, so where they run changes no bit.
    func run(_ tasks: Int, _ arguments: Arguments, work: Int = .max, threads: Int = ThreadPool.maxThreads,
             order: TaskOrder = .fromBothEnds) {
        self.arguments = arguments
        if !ParallelKernel.offersPool(tasks: tasks, work: work) {
            for task in 0..<tasks { perform(task, thread: 0) }
        } else {
            ThreadPool.shared.run(tasks, self, threadLimit: threads, order: order)
        }
        self.arguments = nil
    }

    func perform(_ task: Int, thread: Int) {
        guard let arguments else { return }
        body(arguments, task, thread)
    }
}

/// The number of tasks that cover `count` items in chunks of `chunk` (the last may be smaller).
@inline(__always)
func tasks(_ count: Int, _ chunk: Int) -> Int { (count + chunk - 1) / chunk }

// MARK: - For tests (SPI, not API)

extension ThreadPool {
    /// Runs `tasks` tasks of about `microseconds` each as one region, the workers taking theirs from the
    /// back of the range (`fromBothEnds`) or the front, and returns the thread that ran each task (0: the
    /// caller). Tests check the claiming with it.
    @_spi(Testing) public func threadsRunningTasks(_ tasks: Int, fromBothEnds: Bool, microseconds: Int) -> [Int] {
        let recorder = TaskRecorder(tasks: tasks, microseconds: microseconds)
        run(tasks, recorder, threadLimit: ThreadPool.maxThreads, order: fromBothEnds ? .fromBothEnds : .inOrder)
        return recorder.threads
    }
}

extension ThreadPool {
    /// Whether a background job is out (some of its chunks not yet finished).
    @_spi(Testing) public var backgroundJobIsOut: Bool { backgroundState.load(ordering: .acquiring) & 1 != 0 }

    /// Offers `chunks` background chunks of about `microseconds` each, runs `regionsMeanwhile` regions of
    /// 8 tasks of as long while it is out (plus a second background job, offered while no chunk of the
    /// first can have finished, which must run whole in its own finish), then finishes it. Returns the
    /// thread that ran each chunk (0: the caller), how many times each ran, and whether the pool took the
    /// job and the second one.
    @_spi(Testing) public func threadsRunningBackgroundChunks(_ chunks: Int, microseconds: Int, regionsMeanwhile: Int)
        -> (threads: [Int], runs: [Int], offered: Bool, secondOffered: Bool, secondThreads: [Int]) {
        let recorder = TaskRecorder(tasks: chunks, microseconds: microseconds, gated: true)
        let ticket = postBackground(chunks, recorder)
        let second = TaskRecorder(tasks: 3, microseconds: 1)
        let secondTicket = postBackground(3, second)
        recorder.openGate()
        finishBackground(secondTicket)
        for _ in 0..<regionsMeanwhile {
            let region = TaskRecorder(tasks: 8, microseconds: microseconds)
            run(8, region, threadLimit: ThreadPool.maxThreads)
        }
        finishBackground(ticket)
        return (recorder.threads, recorder.runs, ticket.offered, secondTicket.offered, second.threads)
    }
}

/// Each task writes the thread that ran it into its own slot, after spinning for a while (and, when
/// gated, after waiting for `openGate`: until then no task of it can finish).
private final class TaskRecorder: ParallelWork, @unchecked Sendable {
    private let slots: UnsafeMutableBufferPointer<Int>
    private let counts: UnsafeMutableBufferPointer<Int>
    private let nanoseconds: Int
    private let gateOpen: Atomic<Bool>

    init(tasks: Int, microseconds: Int, gated: Bool = false) {
        slots = .allocate(capacity: tasks)
        slots.initialize(repeating: -1)
        counts = .allocate(capacity: tasks)
        counts.initialize(repeating: 0)
        nanoseconds = microseconds * 1000
        gateOpen = Atomic(!gated)
    }

    func openGate() { gateOpen.store(true, ordering: .releasing) }

    deinit {
        slots.deallocate()
        counts.deallocate()
    }

    var threads: [Int] { Array(slots) }
    /// How many times each task ran.
    var runs: [Int] { Array(counts) }

    func perform(_ task: Int, thread: Int) {
        while !gateOpen.load(ordering: .acquiring) { sched_yield() }
        var start = timespec(), now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &start)
        repeat {
            clock_gettime(CLOCK_MONOTONIC, &now)
        } while (now.tv_sec - start.tv_sec) * 1_000_000_000 + (now.tv_nsec - start.tv_nsec) < nanoseconds
        slots[task] = thread
        counts[task] += 1
    }
}
