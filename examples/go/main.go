// Command walkthrough runs the Confluent Schema Registry + REST Proxy walkthrough against
// tributary over gRPC, in Go.
//
// It registers the User record schema, produces tester1..tester4 as Avro from JSON over
// ProduceStream (one acknowledgement per record, matched by sequence number), consumes them back
// through a consumer group with acknowledgements, lists and describes the topic, checks a schema
// change for compatibility, reads a missing schema id to show the error details, and reads the
// health of both services. Then Protobuf: it registers a walkthrough.v1.Click .proto as a
// PROTOBUF schema, reads it back as a serialized FileDescriptorProto to build the message type
// (dynamicpb), produces two clicks from JSON and one in Protobuf's binary encoding with Produce,
// naming the schema by the latest version of the topic's subject, and consumes them back as
// canonical JSON, equal to what was sent. Then JSON Schema: it registers a draft-07 Signup schema
// as a JSON schema, produces two signups and one that does not validate (it fails alone with
// SCHEMA_MISMATCH, naming the keyword and the path) in one Produce call, again by the latest
// version of the topic's subject, and consumes the two back as the JSON text that was sent. First
// it shows the services' refusal: a call without credentials is UNAUTHENTICATED, with
// Confluent's 40101 in its ErrorInfo. It exits non-zero when anything is not as expected.
//
// The services serve TLS and authenticate every call (but health) by default. The example
// connects over TLS, verifying the services' certificate against --ca (default: the system's
// roots), and authenticates either with basic credentials sent as per-RPC credentials on every
// call (`authorization: Basic base64(user:password)`), or with a client certificate (mTLS).
//
// Generate the client first (scripts/gen-clients), then, from examples/go, with the local
// stack's CA and admin credentials (`scripts/stack env` exports them):
//
//	eval "$(../../scripts/stack env)"
//	go run .               # TLS + basic credentials
//	go run . --auth mtls   # TLS + the client certificate
//
// Every flag has an environment variable:
//
//	--ca PATH             TRIBUTARY_CA_FILE           PEM CA bundle (default: the system's roots)
//	--auth METHOD         TRIBUTARY_AUTH              basic | mtls | none (default: basic when a
//	                                                  username and password are given, else mtls
//	                                                  when a certificate and key are, else none)
//	--username NAME       TRIBUTARY_USERNAME          basic: the user
//	--password-file PATH                              basic: the password, from a file; else
//	                      TRIBUTARY_PASSWORD          the password, else
//	                      TRIBUTARY_PASSWORD_FILE     the password, from a file
//	--cert PATH           TRIBUTARY_CLIENT_CERT_FILE  mtls: PEM client certificate chain
//	--key PATH            TRIBUTARY_CLIENT_KEY_FILE   mtls: PEM private key
//	--plaintext           TRIBUTARY_TLS=0             no TLS and no credentials: only for
//	                                                  services started with --tls off --auth none
//	                      REGISTRY_ADDR, MESSAGING_ADDR  (default 127.0.0.1:50051, :50052)
package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"

	messagingv1 "github.com/tributary-dev/tributary/gen/go/tributary/messaging/v1"
	registryv1 "github.com/tributary-dev/tributary/gen/go/tributary/registry/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

const (
	userSchema = `{"type":"record","name":"User","fields":[{"name":"name","type":"string"}]}`
	// Adds a field without a default: new readers cannot read old records (BACKWARD fails).
	userWithAge = `{"type":"record","name":"User","fields":[{"name":"name","type":"string"},{"name":"age","type":"int"}]}`
	// The same field with a default: compatible.
	userWithOptionalAge = `{"type":"record","name":"User","fields":[{"name":"name","type":"string"},{"name":"age","type":["null","int"],"default":null}]}`
	timeout             = 30 * time.Second
)

var names = []string{"tester1", "tester2", "tester3", "tester4"}

// The Protobuf part: a .proto registered as a PROTOBUF schema, its message named in every record.
const (
	clickProto = `syntax = "proto3";
package walkthrough.v1;

message Click {
  string user = 1;
  int64 at_ms = 2;
  map<string, string> tags = 3;
}
`
	clickMessage = "walkthrough.v1.Click"
)

// The clicks, in Protobuf's JSON mapping (proto field names, or lowerCamelCase with a 64-bit
// integer as a string). The first two are produced as JSON, the last in the binary encoding.
var clicks = []string{
	`{"user":"tester1","at_ms":1767225600000,"tags":{"page":"/home"}}`,
	`{"user":"tester2","atMs":"1767225601500","tags":{"page":"/cart","variant":"b"}}`,
	`{"user":"tester3","at_ms":1767225603000}`,
}

// The JSON Schema part: a draft-07 schema registered as a JSON schema, validated for every record.
const signupSchema = `{"$schema":"http://json-schema.org/draft-07/schema#","title":"Signup","type":"object",` +
	`"properties":{"email":{"type":"string"},"age":{"type":"integer","minimum":0}},` +
	`"required":["email","age"],"additionalProperties":false}`

// The signups: the first two valid, the last below the minimum (it fails alone, SCHEMA_MISMATCH
// naming `minimum` and `/age`; the others are written).
var signups = []string{
	`{"email":"tester1@example.com","age":31}`,
	`{"email":"tester2@example.com","age":0}`,
	`{"email":"tester3@example.com","age":-1}`,
}

func main() {
	plaintext := flag.Bool("plaintext", os.Getenv("TRIBUTARY_TLS") == "0", "no TLS and no credentials (services started with --tls off --auth none)")
	caFile := flag.String("ca", os.Getenv("TRIBUTARY_CA_FILE"), "PEM CA bundle the services' certificates are verified against (default: the system's roots)")
	auth := flag.String("auth", os.Getenv("TRIBUTARY_AUTH"), "basic | mtls | none (default: basic when a username and password are given, else mtls when a certificate and key are)")
	username := flag.String("username", os.Getenv("TRIBUTARY_USERNAME"), "basic: the user")
	passwordFile := flag.String("password-file", "", "basic: the password, from a file (else TRIBUTARY_PASSWORD, else the file TRIBUTARY_PASSWORD_FILE)")
	certFile := flag.String("cert", os.Getenv("TRIBUTARY_CLIENT_CERT_FILE"), "mtls: PEM client certificate chain")
	keyFile := flag.String("key", os.Getenv("TRIBUTARY_CLIENT_KEY_FILE"), "mtls: PEM private key")
	flag.Parse()

	// the password: --password-file, else TRIBUTARY_PASSWORD, else TRIBUTARY_PASSWORD_FILE
	password := ""
	if *passwordFile == "" {
		password, *passwordFile = os.Getenv("TRIBUTARY_PASSWORD"), os.Getenv("TRIBUTARY_PASSWORD_FILE")
	}
	conn, err := newConnection(!*plaintext, *caFile, *auth, *username, password, *passwordFile, *certFile, *keyFile)
	if err != nil {
		fail(err)
	}
	registryAddr, messagingAddr := envOr("REGISTRY_ADDR", "127.0.0.1:50051"), envOr("MESSAGING_ADDR", "127.0.0.1:50052")
	fmt.Printf("connect    registry %s, messaging %s: %s\n", registryAddr, messagingAddr, conn.description)

	ctx, cancel := context.WithTimeout(context.Background(), 2*timeout)
	defer cancel()
	if conn.auth != "none" {
		if err := showRefusal(ctx, conn, registryAddr, messagingAddr); err != nil {
			fail(err)
		}
	}

	registryConn, err := grpc.NewClient(registryAddr, conn.options...)
	if err != nil {
		fail(err)
	}
	defer registryConn.Close()
	messagingConn, err := grpc.NewClient(messagingAddr, conn.options...)
	if err != nil {
		fail(err)
	}
	defer messagingConn.Close()

	if err := walkthrough(ctx, registryConn, messagingConn); err != nil {
		fail(err)
	}
	fmt.Println("go walkthrough: ok")
}

// connection is how to reach the services: the dial options that authenticate every call, and
// those of a TLS connection without credentials (for showing the refusal).
type connection struct {
	auth             string
	description      string
	options          []grpc.DialOption
	anonymousOptions []grpc.DialOption
}

func newConnection(useTLS bool, caFile, auth, username, password, passwordFile, certFile, keyFile string) (*connection, error) {
	if !useTLS {
		if auth != "" && auth != "none" {
			return nil, fmt.Errorf("--auth %s needs TLS: credentials are never sent in plaintext", auth)
		}
		insecureOption := grpc.WithTransportCredentials(insecure.NewCredentials())
		return &connection{auth: "none", description: "plaintext, no credentials", options: []grpc.DialOption{insecureOption}}, nil
	}
	hasPassword := password != "" || passwordFile != ""
	if auth == "" {
		switch {
		case username != "" && hasPassword:
			auth = "basic"
		case certFile != "" && keyFile != "":
			auth = "mtls"
		default:
			auth = "none"
		}
	}

	// TLS 1.2+, verifying the services' certificate against the CA (nil RootCAs: the system's).
	config := &tls.Config{MinVersion: tls.VersionTLS12}
	description := "TLS (the system's roots)"
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, err
		}
		config.RootCAs = x509.NewCertPool()
		if !config.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("no PEM certificate in %s", caFile)
		}
		description = fmt.Sprintf("TLS (CA %s)", caFile)
	}
	conn := &connection{
		auth:             auth,
		anonymousOptions: []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(config))},
	}

	switch auth {
	case "basic":
		if username == "" || !hasPassword {
			return nil, errors.New("basic authentication needs TRIBUTARY_USERNAME and TRIBUTARY_PASSWORD or TRIBUTARY_PASSWORD_FILE")
		}
		if password == "" {
			var err error
			if password, err = readSecret(passwordFile); err != nil {
				return nil, err
			}
		}
		conn.options = []grpc.DialOption{
			grpc.WithTransportCredentials(credentials.NewTLS(config)),
			grpc.WithPerRPCCredentials(basicAuth(username, password)),
		}
		conn.description = fmt.Sprintf("%s, basic credentials of %s", description, username)
	case "mtls":
		if certFile == "" || keyFile == "" {
			return nil, errors.New("mtls needs TRIBUTARY_CLIENT_CERT_FILE and TRIBUTARY_CLIENT_KEY_FILE")
		}
		certificate, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, err
		}
		// The client certificate authenticates the connection, so every call on it.
		withCertificate := config.Clone()
		withCertificate.Certificates = []tls.Certificate{certificate}
		conn.options = []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(withCertificate))}
		conn.description = fmt.Sprintf("%s, client certificate %s", description, certFile)
	case "none":
		conn.options = conn.anonymousOptions
		conn.description = description + ", no credentials"
	default:
		return nil, fmt.Errorf("unknown authentication method %q (basic, mtls or none)", auth)
	}
	return conn, nil
}

// headerCredentials are per-RPC credentials: one `authorization` header on every call, sent
// only over TLS.
type headerCredentials struct{ authorization string }

func (c headerCredentials) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": c.authorization}, nil
}

func (headerCredentials) RequireTransportSecurity() bool { return true }

// basicAuth sends `authorization: Basic base64(user:password)`.
func basicAuth(username, password string) credentials.PerRPCCredentials {
	return headerCredentials{"Basic " + base64.StdEncoding.EncodeToString([]byte(username+":"+password))}
}

// readSecret reads a password from a file: its content without one trailing line break, as the
// services read their own secret files.
func readSecret(path string) (string, error) {
	content, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	text, found := strings.CutSuffix(string(content), "\r\n")
	if !found {
		text = strings.TrimSuffix(text, "\n")
	}
	if text == "" {
		return "", fmt.Errorf("the password file %s is empty", path)
	}
	return text, nil
}

// showRefusal connects without credentials: health still answers (grpc.health.v1 is open by
// default), and any other call is UNAUTHENTICATED with Confluent's 40101 in its ErrorInfo.
func showRefusal(ctx context.Context, conn *connection, registryAddr, messagingAddr string) error {
	registryConn, err := grpc.NewClient(registryAddr, conn.anonymousOptions...)
	if err != nil {
		return err
	}
	defer registryConn.Close()
	messagingConn, err := grpc.NewClient(messagingAddr, conn.anonymousOptions...)
	if err != nil {
		return err
	}
	defer messagingConn.Close()

	health, err := healthpb.NewHealthClient(registryConn).Check(ctx, &healthpb.HealthCheckRequest{Service: ""})
	if err != nil {
		return fmt.Errorf("health of registry without credentials: %w", err)
	}
	fmt.Printf("health     registry without credentials: %s\n", health.GetStatus())

	calls := []struct {
		what string
		call func() error
	}{
		{"registry ListSubjects", func() error {
			_, err := registryv1.NewRegistryServiceClient(registryConn).ListSubjects(ctx, &registryv1.ListSubjectsRequest{})
			return err
		}},
		{"messaging ListTopics", func() error {
			_, err := messagingv1.NewMessagingServiceClient(messagingConn).ListTopics(ctx, &messagingv1.ListTopicsRequest{})
			return err
		}},
	}
	for _, c := range calls {
		err := c.call()
		if err == nil {
			return fmt.Errorf("%s without credentials succeeded", c.what)
		}
		reason, errorCode := errorInfo(err)
		fmt.Printf("refused    %s without credentials: %s %s error_code=%s (%s)\n", c.what, status.Code(err), reason, errorCode, status.Convert(err).Message())
		if status.Code(err) != codes.Unauthenticated || errorCode != "40101" {
			return fmt.Errorf("%s without credentials gave %v, not UNAUTHENTICATED/40101", c.what, err)
		}
	}
	return nil
}

func envOr(name, fallback string) string {
	if value := os.Getenv(name); value != "" {
		return value
	}
	return fallback
}

// fail prints the error, with the gRPC code, ErrorInfo reason and Confluent error code when it
// is a gRPC status, and exits 1.
func fail(err error) {
	if st, ok := status.FromError(err); ok && st.Code() != codes.Unknown {
		info := ""
		if reason, errorCode := errorInfo(err); reason != "" {
			info = fmt.Sprintf(" %s error_code=%s", reason, errorCode)
		}
		fmt.Fprintf(os.Stderr, "FAILED: %s%s: %s\n", st.Code(), info, st.Message())
	} else {
		fmt.Fprintf(os.Stderr, "FAILED: %v\n", err)
	}
	os.Exit(1)
}

// errorInfo reads the google.rpc.ErrorInfo detail of a gRPC error (carried in the
// grpc-status-details-bin trailer): its reason and Confluent error code (metadata "error_code").
func errorInfo(err error) (reason, errorCode string) {
	for _, detail := range status.Convert(err).Details() {
		if info, ok := detail.(*errdetails.ErrorInfo); ok {
			return info.GetReason(), info.GetMetadata()["error_code"]
		}
	}
	return "", ""
}

func walkthrough(ctx context.Context, registryConn, messagingConn *grpc.ClientConn) error {
	registry := registryv1.NewRegistryServiceClient(registryConn)
	messaging := messagingv1.NewMessagingServiceClient(messagingConn)
	run := make([]byte, 6)
	if _, err := rand.Read(run); err != nil {
		return err
	}
	topic := "walkthrough-go-" + hex.EncodeToString(run)
	group, subject := topic, topic+"-value"

	for _, service := range []struct {
		name string
		conn *grpc.ClientConn
	}{{"registry", registryConn}, {"messaging", messagingConn}} {
		health, err := healthpb.NewHealthClient(service.conn).Check(ctx, &healthpb.HealthCheckRequest{Service: ""})
		if err != nil {
			return fmt.Errorf("health of %s: %w", service.name, err)
		}
		fmt.Printf("health     %s: %s\n", service.name, health.GetStatus())
		if health.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			return fmt.Errorf("%s is %s, not SERVING", service.name, health.GetStatus())
		}
	}

	registered, err := registry.RegisterSchema(ctx, &registryv1.RegisterSchemaRequest{Subject: subject, Schema: userSchema})
	if err != nil {
		return err
	}
	fmt.Printf("register   %s: id %d, version %d\n", subject, registered.GetId(), registered.GetVersion())
	if registered.GetVersion() != 1 {
		return fmt.Errorf("first version of a new subject is %d, not 1", registered.GetVersion())
	}

	// A schema id nobody registered: NOT_FOUND, with Confluent's 40403 in the ErrorInfo detail.
	_, err = registry.GetSchema(ctx, &registryv1.GetSchemaRequest{Id: 2_000_000_000})
	reason, errorCode := errorInfo(err)
	fmt.Printf("error      GetSchema(2000000000): %s %s error_code=%s (%s)\n", status.Code(err), reason, errorCode, status.Convert(err).Message())
	if status.Code(err) != codes.NotFound || errorCode != "40403" {
		return fmt.Errorf("unknown schema id gave %v, not NOT_FOUND/40403", err)
	}

	created, err := messaging.CreateTopic(ctx, &messagingv1.CreateTopicRequest{Topic: topic, Partitions: 2, ReplicationFactor: 1})
	if err != nil {
		return err
	}
	fmt.Printf("topic      created %s with %d partitions\n", created.GetTopic().GetTopic(), len(created.GetTopic().GetPartitions()))

	if err := produceStream(ctx, messaging, topic, registered.GetId()); err != nil {
		return err
	}
	if err := listAndDescribe(ctx, messaging, topic); err != nil {
		return err
	}
	records, err := consume(ctx, messaging, topic, group, len(names))
	if err != nil {
		return err
	}
	var consumed []string
	for _, record := range records {
		var user struct {
			Name string `json:"name"`
		}
		if err := json.Unmarshal([]byte(record.GetValue().GetJson()), &user); err != nil {
			return fmt.Errorf("consumed value %q: %w", record.GetValue().GetJson(), err)
		}
		consumed = append(consumed, user.Name)
	}
	sort.Strings(consumed)
	if !slices.Equal(consumed, names) {
		return fmt.Errorf("consumed %v, expected %v", consumed, names)
	}
	if err := checkCompatibility(ctx, registry, subject); err != nil {
		return err
	}

	if _, err := messaging.DeleteTopic(ctx, &messagingv1.DeleteTopicRequest{Topic: topic}); err != nil {
		return err
	}
	fmt.Printf("topic      deleted %s\n", topic)

	if err := protobufWalkthrough(ctx, registry, messaging, topic+"-clicks"); err != nil {
		return err
	}
	return jsonSchemaWalkthrough(ctx, registry, messaging, topic+"-signups")
}

// protobufWalkthrough writes Protobuf records to a topic of their own: it registers the .proto,
// builds the message type from the serialized descriptor the registry serves, produces JSON and
// binary records naming the message, and consumes them back as canonical JSON.
func protobufWalkthrough(ctx context.Context, registry registryv1.RegistryServiceClient, messaging messagingv1.MessagingServiceClient, topic string) error {
	group, subject := topic, topic+"-value"
	registered, err := registry.RegisterSchema(ctx, &registryv1.RegisterSchemaRequest{Subject: subject, Schema: clickProto, SchemaType: "PROTOBUF"})
	if err != nil {
		return err
	}
	fmt.Printf("register   %s (PROTOBUF): id %d, version %d\n", subject, registered.GetId(), registered.GetVersion())
	if registered.GetVersion() != 1 {
		return fmt.Errorf("first version of a new subject is %d, not 1", registered.GetVersion())
	}

	// Format "serialized": the schema as a base64 FileDescriptorProto, from which protodesc
	// builds the descriptors and dynamicpb the messages (no generated code for Click).
	serialized, err := registry.GetSchema(ctx, &registryv1.GetSchemaRequest{Id: registered.GetId(), Format: "serialized"})
	if err != nil {
		return err
	}
	if serialized.GetSchemaType() != "PROTOBUF" {
		return fmt.Errorf("schema %d is %s, not PROTOBUF", registered.GetId(), serialized.GetSchemaType())
	}
	descriptorBytes, err := base64.StdEncoding.DecodeString(serialized.GetSchema())
	if err != nil {
		return fmt.Errorf("serialized schema %d: %w", registered.GetId(), err)
	}
	fileProto := &descriptorpb.FileDescriptorProto{}
	if err := proto.Unmarshal(descriptorBytes, fileProto); err != nil {
		return fmt.Errorf("serialized schema %d: %w", registered.GetId(), err)
	}
	file, err := protodesc.NewFile(fileProto, nil) // no imports to resolve
	if err != nil {
		return fmt.Errorf("serialized schema %d: %w", registered.GetId(), err)
	}
	click := file.Messages().ByName(protoreflect.FullName(clickMessage).Name())
	if click == nil || click.FullName() != clickMessage {
		return fmt.Errorf("schema %d has no message %s", registered.GetId(), clickMessage)
	}
	fmt.Printf("schema     %d serialized: FileDescriptorProto package %s, message %s\n", registered.GetId(), fileProto.GetPackage(), click.FullName())

	created, err := messaging.CreateTopic(ctx, &messagingv1.CreateTopicRequest{Topic: topic, Partitions: 1, ReplicationFactor: 1})
	if err != nil {
		return err
	}
	fmt.Printf("topic      created %s with %d partition\n", created.GetTopic().GetTopic(), len(created.GetTopic().GetPartitions()))

	// What each record should read back as: the message, parsed here from what is sent.
	sent := make([]*dynamicpb.Message, len(clicks))
	for i, text := range clicks {
		sent[i] = dynamicpb.NewMessage(click)
		if err := protojson.Unmarshal([]byte(text), sent[i]); err != nil {
			return fmt.Errorf("click %s: %w", text, err)
		}
	}
	binary, err := proto.Marshal(sent[len(sent)-1])
	if err != nil {
		return err
	}
	// The schema by subject version: the latest version of <topic>-value (TopicNameStrategy).
	latest := &messagingv1.ProtobufPayload_SubjectVersion{SubjectVersion: &messagingv1.SubjectVersionSelector{
		Version:  -1,
		Strategy: messagingv1.SubjectNameStrategy_SUBJECT_NAME_STRATEGY_TOPIC_NAME,
	}}
	request := &messagingv1.ProduceRequest{}
	described := make([]string, len(clicks))
	for i, text := range clicks {
		payload := &messagingv1.ProtobufPayload{Schema: latest, MessageName: clickMessage}
		if i < len(clicks)-1 {
			payload.Data = &messagingv1.ProtobufPayload_Json{Json: text}
			described[i] = "json " + text
		} else {
			payload.Data = &messagingv1.ProtobufPayload_Binary{Binary: binary}
			described[i] = "binary " + hex.EncodeToString(binary)
		}
		request.Records = append(request.Records, &messagingv1.ProducerRecord{
			Topic: topic,
			Value: &messagingv1.Payload{Kind: &messagingv1.Payload_Protobuf{Protobuf: payload}},
		})
	}
	fmt.Printf("produce    %d records of %s, schema: the latest version of %s (TopicNameStrategy)\n", len(clicks), clickMessage, subject)
	produced, err := messaging.Produce(ctx, request)
	if err != nil {
		return err
	}
	if len(produced.GetResults()) != len(clicks) {
		return fmt.Errorf("%d results for %d records", len(produced.GetResults()), len(clicks))
	}
	for i, result := range produced.GetResults() {
		metadata := result.GetMetadata()
		if metadata == nil {
			return fmt.Errorf("%s was not written: %v", described[i], result.GetError())
		}
		fmt.Printf("produce    %s %s -> partition %d offset %d\n", clickMessage, described[i], metadata.GetPartition(), metadata.GetOffset())
		if metadata.GetValueSchemaId() != registered.GetId() {
			return fmt.Errorf("%s framed with schema id %d, not %d", described[i], metadata.GetValueSchemaId(), registered.GetId())
		}
	}

	records, err := consume(ctx, messaging, topic, group, len(clicks))
	if err != nil {
		return err
	}
	for i, record := range records {
		got := record.GetValue().GetJson()
		if record.GetValue().GetSchemaId() != registered.GetId() {
			return fmt.Errorf("offset %d has schema id %d, not %d", record.GetOffset(), record.GetValue().GetSchemaId(), registered.GetId())
		}
		// The very message that was sent, ...
		message := dynamicpb.NewMessage(click)
		if err := protojson.Unmarshal([]byte(got), message); err != nil {
			return fmt.Errorf("offset %d: %s is not a %s: %w", record.GetOffset(), got, clickMessage, err)
		}
		if !proto.Equal(message, sent[i]) {
			return fmt.Errorf("offset %d reads %s, expected %s", record.GetOffset(), got, clicks[i])
		}
		// ... in the canonical JSON mapping: lowerCamelCase names, 64-bit integers as strings,
		// default values left out (as protojson.Marshal writes it).
		canonical, err := protojson.Marshal(sent[i])
		if err != nil {
			return err
		}
		var gotValue, canonicalValue any
		if err := json.Unmarshal([]byte(got), &gotValue); err != nil {
			return fmt.Errorf("offset %d: %w", record.GetOffset(), err)
		}
		if err := json.Unmarshal(canonical, &canonicalValue); err != nil {
			return err
		}
		if !reflect.DeepEqual(gotValue, canonicalValue) {
			return fmt.Errorf("offset %d reads %s, not the canonical %s", record.GetOffset(), got, canonical)
		}
	}

	if _, err := messaging.DeleteTopic(ctx, &messagingv1.DeleteTopicRequest{Topic: topic}); err != nil {
		return err
	}
	fmt.Printf("topic      deleted %s\n", topic)
	return nil
}

// jsonSchemaWalkthrough writes JSON Schema records to a topic of their own: it registers the
// schema, produces the signups in one request naming the schema by the latest version of the
// topic's subject (the invalid one fails alone), and consumes the valid ones back as the JSON
// text that was sent.
func jsonSchemaWalkthrough(ctx context.Context, registry registryv1.RegistryServiceClient, messaging messagingv1.MessagingServiceClient, topic string) error {
	group, subject := topic, topic+"-value"
	registered, err := registry.RegisterSchema(ctx, &registryv1.RegisterSchemaRequest{Subject: subject, Schema: signupSchema, SchemaType: "JSON"})
	if err != nil {
		return err
	}
	fmt.Printf("register   %s (JSON): id %d, version %d\n", subject, registered.GetId(), registered.GetVersion())
	if registered.GetVersion() != 1 {
		return fmt.Errorf("first version of a new subject is %d, not 1", registered.GetVersion())
	}
	fetched, err := registry.GetSchema(ctx, &registryv1.GetSchemaRequest{Id: registered.GetId()})
	if err != nil {
		return err
	}
	if fetched.GetSchemaType() != "JSON" {
		return fmt.Errorf("schema %d is %s, not JSON", registered.GetId(), fetched.GetSchemaType())
	}

	created, err := messaging.CreateTopic(ctx, &messagingv1.CreateTopicRequest{Topic: topic, Partitions: 1, ReplicationFactor: 1})
	if err != nil {
		return err
	}
	fmt.Printf("topic      created %s with %d partition\n", created.GetTopic().GetTopic(), len(created.GetTopic().GetPartitions()))

	// The schema by subject version: the latest version of <topic>-value (TopicNameStrategy).
	latest := &messagingv1.JsonSchemaPayload_SubjectVersion{SubjectVersion: &messagingv1.SubjectVersionSelector{
		Version:  -1,
		Strategy: messagingv1.SubjectNameStrategy_SUBJECT_NAME_STRATEGY_TOPIC_NAME,
	}}
	request := &messagingv1.ProduceRequest{}
	for _, text := range signups {
		request.Records = append(request.Records, &messagingv1.ProducerRecord{
			Topic: topic,
			Value: &messagingv1.Payload{Kind: &messagingv1.Payload_JsonSchema{JsonSchema: &messagingv1.JsonSchemaPayload{
				Json:   text,
				Schema: latest,
			}}},
		})
	}
	fmt.Printf("produce    %d Signup records, schema: the latest version of %s (TopicNameStrategy)\n", len(signups), subject)
	produced, err := messaging.Produce(ctx, request)
	if err != nil {
		return err
	}
	if len(produced.GetResults()) != len(signups) {
		return fmt.Errorf("%d results for %d records", len(produced.GetResults()), len(signups))
	}
	valid := signups[:len(signups)-1]
	for i, text := range valid {
		metadata := produced.GetResults()[i].GetMetadata()
		if metadata == nil {
			return fmt.Errorf("%s was not written: %v", text, produced.GetResults()[i].GetError())
		}
		fmt.Printf("produce    Signup %s -> partition %d offset %d\n", text, metadata.GetPartition(), metadata.GetOffset())
		if metadata.GetValueSchemaId() != registered.GetId() {
			return fmt.Errorf("%s framed with schema id %d, not %d", text, metadata.GetValueSchemaId(), registered.GetId())
		}
	}
	// The invalid one fails alone, naming the keyword and the path.
	invalid := signups[len(signups)-1]
	refused := produced.GetResults()[len(signups)-1].GetError()
	if refused == nil {
		return fmt.Errorf("%s (below the minimum) was written", invalid)
	}
	fmt.Printf("produce    Signup %s -> %s (%s)\n", invalid, refused.GetReason(), refused.GetMessage())
	if refused.GetReason() != "SCHEMA_MISMATCH" || !strings.Contains(refused.GetMessage(), "minimum") || !strings.Contains(refused.GetMessage(), "/age") {
		return fmt.Errorf("%s was refused as %s (%s), not SCHEMA_MISMATCH naming minimum and /age", invalid, refused.GetReason(), refused.GetMessage())
	}

	records, err := consume(ctx, messaging, topic, group, len(valid))
	if err != nil {
		return err
	}
	for i, record := range records {
		got := record.GetValue().GetJson()
		if record.GetValue().GetSchemaId() != registered.GetId() {
			return fmt.Errorf("offset %d has schema id %d, not %d", record.GetOffset(), record.GetValue().GetSchemaId(), registered.GetId())
		}
		// The same JSON value as was sent (compared parsed, not as text).
		var gotValue, sentValue any
		if err := json.Unmarshal([]byte(got), &gotValue); err != nil {
			return fmt.Errorf("offset %d: %s is not JSON: %w", record.GetOffset(), got, err)
		}
		if err := json.Unmarshal([]byte(valid[i]), &sentValue); err != nil {
			return err
		}
		if !reflect.DeepEqual(gotValue, sentValue) {
			return fmt.Errorf("offset %d reads %s, expected %s", record.GetOffset(), got, valid[i])
		}
	}

	if _, err := messaging.DeleteTopic(ctx, &messagingv1.DeleteTopicRequest{Topic: topic}); err != nil {
		return err
	}
	fmt.Printf("topic      deleted %s\n", topic)
	return nil
}

// produceStream writes the four records over one ProduceStream and matches each result to its
// record by sequence number: the per-record acknowledgement of the streaming produce path.
func produceStream(ctx context.Context, messaging messagingv1.MessagingServiceClient, topic string, schemaID int32) error {
	stream, err := messaging.ProduceStream(ctx)
	if err != nil {
		return err
	}
	for _, name := range names {
		value, _ := json.Marshal(map[string]string{"name": name})
		record := &messagingv1.ProducerRecord{
			Topic: topic,
			Value: &messagingv1.Payload{Kind: &messagingv1.Payload_Avro{Avro: &messagingv1.AvroPayload{
				Json:   string(value),
				Schema: &messagingv1.AvroPayload_SchemaId{SchemaId: schemaID},
			}}},
		}
		if err := stream.Send(&messagingv1.ProduceStreamRequest{Record: record}); err != nil {
			return err
		}
	}
	if err := stream.CloseSend(); err != nil {
		return err
	}
	acked := 0
	for {
		ack, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		sequence := ack.GetSequence()
		if sequence != uint64(acked) || sequence >= uint64(len(names)) {
			return fmt.Errorf("ack with sequence %d, expected %d", sequence, acked)
		}
		metadata := ack.GetResult().GetMetadata()
		if metadata == nil {
			return fmt.Errorf("%s was not written: %v", names[sequence], ack.GetResult().GetError())
		}
		if metadata.GetValueSchemaId() != schemaID {
			return fmt.Errorf("%s framed with schema id %d, not %d", names[sequence], metadata.GetValueSchemaId(), schemaID)
		}
		fmt.Printf("produce    ack #%d: %s -> partition %d offset %d\n", sequence, names[sequence], metadata.GetPartition(), metadata.GetOffset())
		acked++
	}
	if acked != len(names) {
		return fmt.Errorf("%d of %d records acknowledged", acked, len(names))
	}
	return nil
}

func listAndDescribe(ctx context.Context, messaging messagingv1.MessagingServiceClient, topic string) error {
	topics, err := messaging.ListTopics(ctx, &messagingv1.ListTopicsRequest{})
	if err != nil {
		return err
	}
	partitionCount := int32(-1)
	for _, t := range topics.GetTopics() {
		if t.GetName() == topic {
			partitionCount = t.GetPartitionCount()
		}
	}
	fmt.Printf("topics     %d topics; %s has %d partitions\n", len(topics.GetTopics()), topic, partitionCount)
	if partitionCount != 2 {
		return fmt.Errorf("%s is not listed with 2 partitions", topic)
	}
	described, err := messaging.DescribeTopic(ctx, &messagingv1.DescribeTopicRequest{Topic: topic})
	if err != nil {
		return err
	}
	for _, p := range described.GetPartitions() {
		fmt.Printf("describe   partition %d: leader %d, replicas %v, in-sync %v\n", p.GetPartition(), p.GetLeader(), p.GetReplicas(), p.GetInSyncReplicas())
	}
	configs := map[string]string{}
	for _, c := range described.GetConfigs() {
		configs[c.GetName()] = c.GetValue()
	}
	fmt.Printf("describe   cleanup.policy=%s retention.ms=%s\n", configs["cleanup.policy"], configs["retention.ms"])
	if len(described.GetPartitions()) != 2 || configs["cleanup.policy"] == "" {
		return fmt.Errorf("DescribeTopic is missing partitions or configs")
	}
	return nil
}

// consume reads expected records of topic through the consumer group, acknowledging each, and
// keeps the stream open until the group's committed offsets cover them (commits are
// asynchronous; closing the stream earlier could drop acknowledgements still in flight). A record
// that could not be decoded is an error.
func consume(ctx context.Context, messaging messagingv1.MessagingServiceClient, topic, group string, expected int) ([]*messagingv1.ConsumedRecord, error) {
	streamCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	stream, err := messaging.Consume(streamCtx)
	if err != nil {
		return nil, err
	}
	err = stream.Send(&messagingv1.ConsumeRequest{Kind: &messagingv1.ConsumeRequest_Subscription{Subscription: &messagingv1.Subscription{
		GroupId:     group,
		Topics:      []string{topic},
		Start:       messagingv1.StartPosition_START_POSITION_EARLIEST,
		ValueFormat: messagingv1.PayloadFormat_PAYLOAD_FORMAT_AVRO_PLAIN,
	}}})
	if err != nil {
		return nil, err
	}
	var records []*messagingv1.ConsumedRecord
	for len(records) < expected {
		response, err := stream.Recv()
		if err != nil {
			return nil, fmt.Errorf("consumed %d of %d records: %w", len(records), expected, err)
		}
		if rebalance := response.GetRebalance(); rebalance != nil {
			fmt.Printf("consume    group %s: %d partitions assigned, %d revoked\n", group, len(rebalance.GetAssigned()), len(rebalance.GetRevoked()))
			continue
		}
		record := response.GetRecord()
		value := record.GetValue()
		if value.GetError() != nil {
			return nil, fmt.Errorf("record at %d/%d not decoded: %s", record.GetPartition(), record.GetOffset(), value.GetError().GetMessage())
		}
		fmt.Printf("consume    partition %d offset %d: %s (schema id %d)\n", record.GetPartition(), record.GetOffset(), value.GetJson(), value.GetSchemaId())
		records = append(records, record)
		ack := &messagingv1.Ack{Topic: record.GetTopic(), Partition: record.GetPartition(), Offset: record.GetOffset()}
		if err := stream.Send(&messagingv1.ConsumeRequest{Kind: &messagingv1.ConsumeRequest_Ack{Ack: ack}}); err != nil {
			return nil, err
		}
	}
	committed, err := waitForCommits(streamCtx, messaging, group, topic, int64(expected))
	if err != nil {
		return nil, err
	}
	fmt.Printf("consume    group %s committed %d records (all acknowledged)\n", group, committed)
	if committed != int64(expected) {
		return nil, fmt.Errorf("group committed %d records, expected %d", committed, expected)
	}
	return records, stream.CloseSend()
}

// waitForCommits returns the group's committed offsets summed over the partitions of topic,
// once they reach expected or the context ends.
func waitForCommits(ctx context.Context, messaging messagingv1.MessagingServiceClient, group, topic string, expected int64) (int64, error) {
	for {
		described, err := messaging.DescribeConsumerGroup(ctx, &messagingv1.DescribeConsumerGroupRequest{GroupId: group})
		if err != nil {
			return 0, err
		}
		var committed int64
		for _, offset := range described.GetOffsets() {
			if offset.GetTopic() == topic {
				committed += offset.GetOffset()
			}
		}
		if committed >= expected {
			return committed, nil
		}
		select {
		case <-ctx.Done():
			return committed, nil
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func checkCompatibility(ctx context.Context, registry registryv1.RegistryServiceClient, subject string) error {
	refused, err := registry.CheckCompatibility(ctx, &registryv1.CheckCompatibilityRequest{Subject: subject, Schema: userWithAge})
	if err != nil {
		return err
	}
	fmt.Printf("compatible adding 'age' without default: %t at %s\n", refused.GetIsCompatible(), refused.GetLevel())
	for _, reason := range refused.GetIncompatibilities() {
		fmt.Printf("           - %s\n", reason.GetDescription())
	}
	if refused.GetIsCompatible() || len(refused.GetIncompatibilities()) == 0 {
		return fmt.Errorf("a field without default passed as compatible")
	}
	accepted, err := registry.CheckCompatibility(ctx, &registryv1.CheckCompatibilityRequest{Subject: subject, Schema: userWithOptionalAge})
	if err != nil {
		return err
	}
	fmt.Printf("compatible adding 'age' with default null: %t\n", accepted.GetIsCompatible())
	if !accepted.GetIsCompatible() {
		return fmt.Errorf("an optional field was refused: %v", accepted.GetIncompatibilities())
	}
	return nil
}
