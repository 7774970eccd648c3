import CSodium

/// Keys as text: standard base64 of the 32 bytes (44 characters), as `tunneld genkey`
/// prints them and site files quote public keys.
public enum KeyText {
    public static func encode(_ key: [UInt8]) -> String {
        _ = sodium_init()
        let size = sodium_base64_encoded_len(key.count, Int32(sodium_base64_VARIANT_ORIGINAL))
        var text = [CChar](repeating: 0, count: size)
        _ = sodium_bin2base64(&text, size, key, key.count, Int32(sodium_base64_VARIANT_ORIGINAL))
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The 32 bytes of a base64 key, or nil if the text is not exactly that.
    public static func decode(_ text: String) -> [UInt8]? {
        _ = sodium_init()
        var key = [UInt8](repeating: 0, count: 32)
        var length = 0
        let utf8 = Array(text.utf8)
        guard utf8.count == 44,
              sodium_base642bin(&key, key.count, utf8.map { CChar(bitPattern: $0) }, utf8.count, nil, &length, nil,
                                Int32(sodium_base64_VARIANT_ORIGINAL)) == 0,
              length == 32 else { return nil }
        return key
    }
}
