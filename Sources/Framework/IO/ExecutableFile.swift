import Glibc

/// Checks a program the daemon runs (a hook, a status command) before trusting it.
///
/// Hooks run with the daemon's capabilities (`CAP_NET_ADMIN`, root when it keeps
/// root), so whoever can change a hook can act with them. As OpenSSH checks the
/// programs and files it trusts: the program and every folder above it (as written
/// and after symlinks) must belong to root or the daemon's user and be writable by
/// their owner only; a folder others may write is accepted only when sticky (like
/// /tmp), where no one can replace another's file. The program must exist and be
/// readable and executable by the daemon's user (a script is read by its interpreter).
/// Each refusal names the file and the command that fixes it.
enum ExecutableFile {
    struct Refusal: Error, CustomStringConvertible, Equatable {
        let description: String
    }

    static func check(_ path: String, runAs user: DaemonUser) throws {
        var info = stat()
        guard stat(path, &info) == 0 else {
            let code = errno
            if code == ENOENT {
                throw Refusal(description: "program '\(path)' does not exist; install it (owned by root, writable by its owner only) or remove the setting")
            }
            throw Refusal(description: "cannot check program '\(path)': \(String(cString: strerror(code)))")
        }
        guard info.st_mode & S_IFMT == S_IFREG else {
            throw Refusal(description: "program '\(path)' is not a regular file")
        }
        try checkOwner(path, info, what: "program", user: user)
        let mode = info.st_mode & 0o7777
        guard mode & 0o022 == 0 else {
            throw Refusal(description: "program '\(path)' is writable by group or others (mode \(octal(mode))); "
                + "make it writable by its owner only with 'chmod go-w \(path)'")
        }
        guard mayReadAndExecute(info, user: user) else {
            throw Refusal(description: "program '\(path)' is not readable and executable by \(user.name) (mode \(octal(mode))), "
                + "the user tunneld runs as; 'chmod 755 \(path)'")
        }
        let absolute = absolutePath(path)
        var folders = ancestors(of: absolute)
        if let real = realpath(absolute, nil) {
            for folder in ancestors(of: String(cString: real)) where !folders.contains(folder) { folders.append(folder) }
            free(real)
        }
        for folder in folders {
            var folderInfo = stat()
            guard stat(folder, &folderInfo) == 0 else { continue }  // gone meanwhile: the program's stat above held
            try checkOwner(folder, folderInfo, what: "folder", program: path, user: user)
            let folderMode = folderInfo.st_mode & 0o7777
            if folderMode & 0o022 != 0 && folderMode & S_ISVTX == 0 {
                throw Refusal(description: "program '\(path)' is in '\(folder)', which is writable by group or others (mode \(octal(folderMode))), "
                    + "so they could replace it; 'chmod go-w \(folder)' or move the program")
            }
        }
    }

    private static func checkOwner(_ path: String, _ info: stat, what: String, program: String? = nil, user: DaemonUser) throws {
        guard info.st_uid != 0 && info.st_uid != user.uid else { return }
        let owners = user.uid == 0 ? "root" : "root or \(user.name)"
        let place = program.map { "program '\($0)' is in '\(path)', which" } ?? "\(what) '\(path)'"
        throw Refusal(description: "\(place) is owned by \(DaemonUser.userName(info.st_uid)); tunneld runs the program with its "
            + "capabilities, so only \(owners) may own it: 'chown root \(path)'")
    }

    /// As the kernel decides it for `user` (root may run anything with an execute bit).
    private static func mayReadAndExecute(_ info: stat, user: DaemonUser) -> Bool {
        let mode = info.st_mode
        if user.uid == 0 { return mode & 0o111 != 0 }
        let bits: mode_t = info.st_uid == user.uid ? 0o500 : user.isMember(of: info.st_gid) ? 0o050 : 0o005
        return mode & bits == bits
    }

    private static func absolutePath(_ path: String) -> String {
        guard !path.hasPrefix("/"), let cwd = getcwd(nil, 0) else { return path }
        defer { free(cwd) }
        return String(cString: cwd) + "/" + path
    }

    /// "/a/b/c" → ["/a/b", "/a", "/"].
    private static func ancestors(of path: String) -> [String] {
        var result: [String] = []
        var current = Substring(path)
        while let slash = current.lastIndex(of: "/") {
            current = current[..<slash]
            result.append(current.isEmpty ? "/" : String(current))
            if current.isEmpty { break }
        }
        return result
    }

    private static func octal(_ mode: mode_t) -> String { String(mode, radix: 8) }
}
