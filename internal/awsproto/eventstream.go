package awsproto

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"hash/crc32"
	"net/http"
)

// EventStream is an operation output that is a stream of events, sent as
// AWS event-stream messages (application/vnd.amazon.eventstream) over a
// chunked response: CloudWatch Logs' StartLiveTail. For JSON protocols the
// front door first sends the "initial-response" event the SDKs expect,
// then calls Run until it returns; an error from Run ends the stream with
// an exception message (its AWS code from the service's MapError).
type EventStream struct {
	Run func(ctx context.Context, send func(eventType string, payload any) error) error
}

// EventStreamContentType is the media type of an event stream.
const EventStreamContentType = "application/vnd.amazon.eventstream"

// EncodeEventMessage frames one event-stream message: a prelude (total
// length, headers length, CRC-32 of both), string headers, the payload and
// a CRC-32 of everything before it.
func EncodeEventMessage(headers [][2]string, payload []byte) []byte {
	var hb []byte
	for _, h := range headers {
		hb = append(hb, byte(len(h[0])))
		hb = append(hb, h[0]...)
		hb = append(hb, 7) // string
		hb = binary.BigEndian.AppendUint16(hb, uint16(len(h[1])))
		hb = append(hb, h[1]...)
	}
	total := 12 + len(hb) + len(payload) + 4
	msg := make([]byte, 0, total)
	msg = binary.BigEndian.AppendUint32(msg, uint32(total))
	msg = binary.BigEndian.AppendUint32(msg, uint32(len(hb)))
	msg = binary.BigEndian.AppendUint32(msg, crc32.ChecksumIEEE(msg[:8]))
	msg = append(msg, hb...)
	msg = append(msg, payload...)
	return binary.BigEndian.AppendUint32(msg, crc32.ChecksumIEEE(msg))
}

func (fd *FrontDoor) writeEventStream(ctx context.Context, x *exchange, es *EventStream) {
	w := x.w
	flusher, _ := w.(http.Flusher)
	w.Header().Set("Content-Type", EventStreamContentType)
	w.WriteHeader(http.StatusOK)
	write := func(msg []byte) error {
		if _, err := w.Write(msg); err != nil {
			return err
		}
		if flusher != nil {
			flusher.Flush()
		}
		return nil
	}
	event := func(eventType string, payload any) error {
		b, err := json.Marshal(payload)
		if err != nil {
			return err
		}
		return write(EncodeEventMessage([][2]string{
			{":message-type", "event"}, {":event-type", eventType}, {":content-type", "application/json"}}, b))
	}
	if x.svc.Protocol != Query {
		if err := event("initial-response", struct{}{}); err != nil {
			return
		}
	}
	err := es.Run(ctx, event)
	if err == nil || ctx.Err() != nil {
		return
	}
	we := toWire(x.svc, err)
	b, _ := json.Marshal(struct {
		Message string `json:"message"`
	}{we.Message})
	write(EncodeEventMessage([][2]string{
		{":message-type", "exception"}, {":exception-type", we.Code}, {":content-type", "application/json"}}, b))
}
