import Hummingbird

/// SCIM responses: `application/scim+json` bodies and SCIM error documents.
enum SCIMResponse {
    static let contentType = "application/scim+json"

    static func json(_ value: SCIMJSON, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
        var fields = headers
        fields[.contentType] = contentType
        return Response(status: status, headers: fields, body: ResponseBody(byteBuffer: ByteBuffer(bytes: value.bytes)))
    }

    static func error(_ error: SCIMError, headers: HTTPFields = [:]) -> Response {
        json(error.document, status: HTTPResponse.Status(code: error.status), headers: headers)
    }
}
