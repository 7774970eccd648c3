import CNetlink
import CSodium
import CYAML
import Framework

/// What `tunneld --version` prints: this build's version and the C libraries it runs
/// with — read from the loaded libraries, not the headers it was compiled against, so a
/// Debian upgrade of libsodium shows here without rebuilding.
enum VersionInfo {
    static var text: String {
        let libnl = "\(nl_ver_maj).\(nl_ver_min).\(nl_ver_mic)"
        return """
        tunneld \(TunnelStatus.version)
        libsodium \(String(cString: sodium_version_string()))
        libyaml \(String(cString: yaml_get_version_string()))
        libnl-genl-3 \(libnl)
        """
    }
}
