// The file system side of checkpoints: an atomic writer (temporary file in the same folder, written,
// fsynced, renamed over the target, folder fsynced) and a positional reader. Every failure is a thrown
// BNDError (.io for the file system) naming the file and the system's reason.
import Glibc
import Synchronization

/// The system's text for `code` (errno).
func systemError(_ code: Int32) -> String { String(cString: strerror(code)) }

/// Writes a file so that readers see either the old file or the whole new one, never a part: the bytes go
/// to a temporary file beside the target (`.bndrop-<pid>-<n>.tmp`), which is fsynced and renamed over the
/// target only when everything was written; the folder is then fsynced so the rename survives a crash.
/// On any failure the temporary file is removed and the target is left as it was.
///
/// Test hook (bndrop's own tests only, documented in bndrop.h): when BNDROP_TEST_SAVE_FAIL_AFTER is set
/// to a number K, writing fails as a full disk would (ENOSPC) once K bytes have been written.
final class AtomicFileWriter {
    let path: String
    private let folder: String
    private let temporaryPath: String
    private var fd: Int32
    private var written = 0
    private var finished = false
    private let failAfter: Int?

    private static let counter = Atomic<Int>(0)

    init(path given: String) throws {
        guard !given.isEmpty else { throw BNDError.io("cannot save to an empty path") }
        let path = try AtomicFileWriter.target(given)
        self.path = path
        let slash = path.lastIndex(of: "/")
        let name = slash.map { String(path[path.index(after: $0)...]) } ?? path
        guard !name.isEmpty, name != ".", name != ".." else {
            throw BNDError.io("cannot save to '\(path)': the path names a folder, not a file")
        }
        folder = slash.map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
        let prefix = slash.map { String(path[...$0]) } ?? ""
        failAfter = getenv("BNDROP_TEST_SAVE_FAIL_AFTER").flatMap { Int(String(cString: $0)) }
        // A short name (not derived from the target's): any name the folder takes leaves room for it. A
        // file of that name left by a killed process (whose pid this one may have) is skipped: another
        // number is tried.
        var candidate = "", opened: Int32 = -1, code: Int32 = 0
        for _ in 0..<64 {
            let n = AtomicFileWriter.counter.add(1, ordering: .relaxed).newValue
            candidate = "\(prefix).bndrop-\(getpid())-\(n).tmp"
            opened = open(candidate, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o666)
            code = errno
            if opened >= 0 || code != EEXIST { break }
        }
        temporaryPath = candidate
        fd = opened
        guard fd >= 0 else {
            throw BNDError.io("cannot save '\(path)': cannot create '\(temporaryPath)': \(systemError(code))")
        }
    }

    /// The file to replace for `path`: a symbolic link is followed to the file it names (the link stays a
    /// link, as when a program writes through it); what is there must be a regular file or nothing. A
    /// FIFO, a device or a socket is refused rather than replaced by a regular file.
    private static func target(_ path: String) throws -> String {
        var info = stat()
        guard lstat(path, &info) == 0 else { return path }  // nothing there (or unreadable): rename decides
        var resolved = path
        if info.st_mode & S_IFMT == S_IFLNK {
            guard let real = realpath(path, nil) else {
                throw BNDError.io("cannot save '\(path)': it is a symbolic link to nothing that exists "
                                  + "(\(systemError(errno))); nothing was written")
            }
            let decoded = String(validatingCString: real)
            free(real)
            // Paths are UTF-8 (bndrop.h): a target in another encoding, read as a String, would name
            // another file.
            guard let decoded else {
                throw BNDError.io("cannot save '\(path)': it is a symbolic link whose target's path is not "
                                  + "valid UTF-8; nothing was written")
            }
            resolved = decoded
            guard stat(resolved, &info) == 0 else { return resolved }
        }
        let kind = info.st_mode & S_IFMT
        guard kind == S_IFREG || kind == S_IFDIR else {  // a folder: refused below, by its name or the rename
            throw BNDError.io("cannot save '\(path)': it is not a regular file (a FIFO, device or socket); "
                              + "nothing was written")
        }
        return resolved
    }

    deinit { if !finished { abandon() } }

    private func failure(_ what: String, _ code: Int32) -> BNDError {
        abandon()
        return .io("cannot save '\(path)': \(what) '\(temporaryPath)' failed: \(systemError(code)); "
                   + "'\(path)' is unchanged")
    }

    /// Closes and removes the temporary file (the target is untouched).
    private func abandon() {
        guard !finished else { return }
        finished = true
        if fd >= 0 { close(fd) }
        fd = -1
        unlink(temporaryPath)
    }

    /// Appends `bytes`.
    func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard !finished else { throw BNDError.internalError("write after the file was finished") }
        guard var p = bytes.baseAddress else { return }
        var left = bytes.count
        if let limit = failAfter, written + left > limit {
            let allowed = max(0, limit - written)
            if allowed > 0 { try write(UnsafeRawBufferPointer(start: p, count: allowed)) }
            throw failure("writing", ENOSPC)
        }
        while left > 0 {
            let n = Glibc.write(fd, p, left)
            if n < 0 {
                if errno == EINTR { continue }
                throw failure("writing", errno)
            }
            if n == 0 { throw failure("writing", EIO) }
            p += n
            left -= n
            written += n
        }
    }

    func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write($0) }
    }

    /// Makes the new file the target: fsync, close, rename, fsync of the folder.
    func commit() throws {
        guard !finished else { throw BNDError.internalError("commit after the file was finished") }
        if fsync(fd) != 0 { throw failure("syncing", errno) }
        let closed = close(fd)
        fd = -1
        if closed != 0 { throw failure("closing", errno) }
        if rename(temporaryPath, path) != 0 {
            let code = errno
            abandon()
            throw BNDError.io("cannot save '\(path)': renaming '\(temporaryPath)' to it failed: \(systemError(code)); "
                              + "'\(path)' is unchanged")
        }
        finished = true
        let dir = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dir >= 0 {
            let synced = fsync(dir) == 0 || errno == EINVAL   // some file systems cannot sync a folder
            let code = errno
            close(dir)
            if !synced {
                throw BNDError.io("saved '\(path)', but syncing its folder '\(folder)' failed: \(systemError(code))")
            }
        }
    }
}

/// A file opened for reading at given offsets; closed with the reader.
final class FileReader {
    let path: String
    let size: Int
    private let fd: Int32

    init(path: String) throws {
        self.path = path
        guard !path.isEmpty else { throw BNDError.io("cannot open an empty path") }
        // O_NONBLOCK: a FIFO opens at once (and is refused below) instead of waiting for a writer; reads
        // of a regular file are not affected by it.
        fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw BNDError.io("cannot open '\(path)': \(systemError(errno))") }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            let code = errno
            close(fd)
            throw BNDError.io("cannot read '\(path)': \(systemError(code))")
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            throw BNDError.io("cannot read '\(path)': not a regular file")
        }
        size = Int(info.st_size)
    }

    deinit { close(fd) }

    /// Reads exactly `count` bytes at `offset` into `buffer`; a file that ends first (it changed since it
    /// was opened) is a format error.
    func read(into buffer: UnsafeMutableRawPointer, count: Int, at offset: Int) throws {
        var done = 0
        while done < count {
            let n = pread(fd, buffer + done, count - done, off_t(offset + done))
            if n < 0 {
                if errno == EINTR { continue }
                throw BNDError.io("cannot read '\(path)': \(systemError(errno))")
            }
            if n == 0 {
                throw BNDError.format("'\(path)' ended at byte \(offset + done), before the \(count) bytes at \(offset) "
                                      + "it declares (was it changed while being read?)")
            }
            done += n
        }
    }
}
