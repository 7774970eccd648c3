import Foundation
import Framework

/// The status as JSON: snake_case keys, sorted, one document per request. The field
/// names are documented in the README (Monitoring) with their mlvpn equivalents.
public enum StatusJSON {
    static func encode(_ status: TunnelStatus) throws -> Data {
        try encoder(pretty: true).encode(status)
    }

    static func encoder(pretty: Bool) -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = pretty ? [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    public static func decode(_ data: Data) throws -> TunnelStatus {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try decoder.decode(TunnelStatus.self, from: data)
    }
}
