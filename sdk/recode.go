package sdk

import (
	"fmt"

	"google.golang.org/protobuf/proto"
)

// recode copies in into out through the wire format. Contract versions 1
// and 2 share every message but the Events ones field for field (same
// numbers, same types; TestWireCompatible holds them to it), so the SDK
// speaks version 2 inside and re-encodes at a version 1 boundary instead
// of keeping a second set of converters.
func recode(in, out proto.Message) error {
	b, err := proto.Marshal(in)
	if err != nil {
		return fmt.Errorf("encode %s: %w", in.ProtoReflect().Descriptor().FullName(), err)
	}
	if err := proto.Unmarshal(b, out); err != nil {
		return fmt.Errorf("decode %s: %w", out.ProtoReflect().Descriptor().FullName(), err)
	}
	return nil
}

// pointerTo constrains a type parameter to *T for a message type T.
type pointerTo[T any] interface {
	*T
	proto.Message
}

// recodeAs re-encodes in as a new message of type *T.
func recodeAs[T any, PT pointerTo[T]](in proto.Message) (PT, error) {
	out := PT(new(T))
	if err := recode(in, out); err != nil {
		return nil, err
	}
	return out, nil
}
