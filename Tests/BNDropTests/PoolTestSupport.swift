@_spi(Testing) import BNDrop

extension ThreadPool {
    /// Uses `threads` threads from now on, and with more than one makes sure a worker exists (a first
    /// region starts it): the pool offers background work only then.
    func useThreadsWithWorkers(_ threads: Int) throws {
        try setThreadCount(threads)
        _ = threadsRunningTasks(8, fromBothEnds: true, microseconds: 1)
    }
}
