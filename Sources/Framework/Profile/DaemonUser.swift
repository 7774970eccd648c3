import Glibc

/// The user `tunneld` runs as once started: the site file's `user:`, else whoever
/// started it (root, or systemd's `User=`). It decides which files the daemon may
/// trust: its secret files must be this user's (it reads them again on a reload or a
/// new session, after giving up root), and the programs it runs with its
/// capabilities must be root's or this user's, so no one else can change them.
public struct DaemonUser: Sendable, Equatable, CustomStringConvertible {
    public let name: String
    public let uid: uid_t
    public let gid: gid_t
    /// Supplementary groups, as a login (initgroups) would give them.
    let groups: [gid_t]

    public var description: String { name }

    /// The account `name` from the user database; nil when there is none.
    static func named(_ name: String) -> DaemonUser? {
        var entry = passwd()
        var found: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 16_384)
        guard getpwnam_r(name, &entry, &buffer, buffer.count, &found) == 0, found != nil else { return nil }
        let (uid, gid) = (entry.pw_uid, entry.pw_gid)
        var count: Int32 = 32
        var groups = [gid_t](repeating: 0, count: Int(count))
        if getgrouplist(name, gid, &groups, &count) < 0 {  // more groups than room: count says how many
            groups = [gid_t](repeating: 0, count: Int(count))
            if getgrouplist(name, gid, &groups, &count) < 0 { count = 0 }
        }
        return DaemonUser(name: name, uid: uid, gid: gid, groups: Array(groups.prefix(Int(max(0, count)))))
    }

    /// Whoever runs this process (its effective ids).
    static var current: DaemonUser {
        let uid = geteuid()
        var groups = [gid_t](repeating: 0, count: Int(max(0, getgroups(0, nil))))
        let count = getgroups(Int32(groups.count), &groups)
        return DaemonUser(name: userName(uid), uid: uid, gid: getegid(), groups: Array(groups.prefix(Int(max(0, count)))))
    }

    /// A name for messages: the account's, or "uid N" when the database has none.
    static func userName(_ uid: uid_t) -> String {
        var entry = passwd()
        var found: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 16_384)
        guard getpwuid_r(uid, &entry, &buffer, buffer.count, &found) == 0, found != nil, let name = entry.pw_name else {
            return "uid \(uid)"
        }
        return String(cString: name)
    }

    func isMember(of group: gid_t) -> Bool { group == gid || groups.contains(group) }

    /// The daemon's user while `ProfileLoader` loads a site file. `SecretFile` and
    /// program settings (`SettingType.executable`) check ownership against it, so
    /// `validate` and `run` refuse what the daemon should not trust, at the setting's
    /// place in the file. Outside a load (`tunneld pubkey`, a session made at run
    /// time) it is nil and only a secret file's mode is checked.
    @TaskLocal static var checkingFiles: DaemonUser?
}
