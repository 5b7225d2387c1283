package awsproto

import (
	"encoding/xml"
	"net/http"
)

// Query protocol answers: XML documents wrapping the output in
// <OpResponse><OpResult>...</OpResult><ResponseMetadata>...</...>.

type queryResponse struct {
	XMLName   xml.Name
	Xmlns     string      `xml:"xmlns,attr,omitempty"`
	Result    queryResult `xml:",any"`
	RequestID string      `xml:"ResponseMetadata>RequestId"`
}

type queryResult struct {
	XMLName xml.Name
	Inner   []byte `xml:",innerxml"`
}

func writeQueryOutput(w http.ResponseWriter, svc *Service, op, requestID string, out any) {
	inner, err := xml.Marshal(out)
	if err != nil {
		writeQueryError(w, svc, requestID, DefaultError(err))
		return
	}
	// xml.Marshal wraps the value in an element named after its type;
	// keep only its children.
	var shell struct {
		Inner []byte `xml:",innerxml"`
	}
	if err := xml.Unmarshal(inner, &shell); err == nil {
		inner = shell.Inner
	}
	resp := queryResponse{
		XMLName:   xml.Name{Local: op + "Response"},
		Xmlns:     svc.XMLNamespace,
		Result:    queryResult{XMLName: xml.Name{Local: op + "Result"}, Inner: inner},
		RequestID: requestID,
	}
	b, _ := xml.Marshal(resp)
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(http.StatusOK)
	w.Write([]byte(xml.Header))
	w.Write(b)
}

type queryErrorResponse struct {
	XMLName xml.Name `xml:"ErrorResponse"`
	Xmlns   string   `xml:"xmlns,attr,omitempty"`
	Error   struct {
		Type    string `xml:"Type"`
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	} `xml:"Error"`
	RequestID string `xml:"RequestId"`
}

func writeQueryError(w http.ResponseWriter, svc *Service, requestID string, e *Error) {
	var resp queryErrorResponse
	if svc != nil {
		resp.Xmlns = svc.XMLNamespace
	}
	resp.Error.Type = "Sender"
	if e.HTTPStatus() >= 500 {
		resp.Error.Type = "Receiver"
	}
	resp.Error.Code = e.Code
	resp.Error.Message = e.Message
	resp.RequestID = requestID
	b, _ := xml.Marshal(resp)
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(e.HTTPStatus())
	w.Write([]byte(xml.Header))
	w.Write(b)
}
