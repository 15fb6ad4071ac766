/*
 * Offline FHIR R4B instance validator for the gateway's test suite (tests/support/hapi.py).
 *
 * Run with Java 17's single-file source launcher, the class path being the jars gathered by
 * scripts/ensure-hapi-validator.sh from tools/hapi-validator/pom.xml:
 *
 *     java -Xmx1g -cp '<jar dir>/*' tools/hapi-validator/Validate.java profiles/
 *
 * Start-up: every *.json under the profiles directory (recursively) whose resourceType is
 * StructureDefinition, CodeSystem, ValueSet or Questionnaire is loaded as a conformance
 * resource; other files (CapabilityStatement, examples, ...) are ignored. A missing or empty
 * directory is fine (nothing is loaded). Then one line is written to stdout:
 *
 *     {"ready": true, "loaded": N, "problems": [{"file": "...", "message": "..."}]}
 *
 * "problems" (also logged on stderr) lists files that were not loaded (not JSON, unknown
 * elements, no url, a url|version already loaded from another file) and StructureDefinitions
 * whose snapshot cannot be generated without errors (unknown baseDefinition, differential
 * elements that match nothing, e.g. a misspelt path or elements out of order): HAPI itself
 * drops those silently at validation time and the profile's rules are then not applied.
 *
 * Protocol, one JSON document per line each way, answered in order; exits when stdin closes:
 *
 *     in:  {"id": "...", "resource": {...FHIR JSON...}}
 *     out: {"id": "...", "issues": [{"severity": "error", "location": "Task.status",
 *                                   "message": "...", "messageId": "...", "line": 1, "col": 2}]}
 *
 * severity is fatal, error, warning or information; messageId, line and col only when HAPI
 * gives them. location is HAPI's, except that a missing required element is located at the
 * element ("Task.status") rather than at its parent ("Task"). A line that is not such a request
 * gets an answer with one fatal issue (id null if it could not be read); the program never stops
 * on bad input. Blank lines are ignored (no answer). The resource text is validated exactly as
 * sent (it is cut out of the request line, not re-serialised), so line/col are positions in it.
 *
 * Validation is fully offline: project resources, then the R4B core definitions, built-in
 * terminology, in-memory terminology, snapshot generation for differential-only profiles, and
 * unknown code systems reported as warnings. Unknown profiles in meta.profile are errors;
 * references are not resolved; best-practice warnings (e.g. dom-6, narrative) are ignored.
 * Logging goes to stderr at warn level.
 */

import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.context.support.DefaultProfileValidationSupport;
import ca.uhn.fhir.context.support.IValidationSupport;
import ca.uhn.fhir.parser.StrictErrorHandler;
import ca.uhn.fhir.validation.FhirValidator;
import ca.uhn.fhir.validation.SingleValidationMessage;
import ca.uhn.fhir.validation.ValidationResult;
import ca.uhn.hapi.converters.canonical.VersionCanonicalizer;
import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.BufferedReader;
import java.io.FileOutputStream;
import java.io.FileDescriptor;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.hl7.fhir.common.hapi.validation.support.CommonCodeSystemsTerminologyService;
import org.hl7.fhir.common.hapi.validation.support.InMemoryTerminologyServerValidationSupport;
import org.hl7.fhir.common.hapi.validation.support.PrePopulatedValidationSupport;
import org.hl7.fhir.common.hapi.validation.support.SnapshotGeneratingValidationSupport;
import org.hl7.fhir.common.hapi.validation.support.UnknownCodeSystemWarningValidationSupport;
import org.hl7.fhir.common.hapi.validation.support.ValidationSupportChain;
import org.hl7.fhir.common.hapi.validation.validator.FhirInstanceValidator;
import org.hl7.fhir.instance.model.api.IBaseResource;
import org.hl7.fhir.common.hapi.validation.validator.ProfileKnowledgeWorkerR5;
import org.hl7.fhir.common.hapi.validation.validator.WorkerContextValidationSupportAdapter;
import org.hl7.fhir.r4b.model.Questionnaire;
import org.hl7.fhir.r4b.model.StructureDefinition;
import org.hl7.fhir.r5.conformance.profile.ProfileUtilities;
import org.hl7.fhir.r5.utils.validation.constants.BestPracticeWarningLevel;
import org.hl7.fhir.utilities.validation.ValidationMessage;

public class Validate {

    static final Set<String> LOADED_TYPES =
            Set.of("StructureDefinition", "CodeSystem", "ValueSet", "Questionnaire");

    static final ObjectMapper JSON = new ObjectMapper();

    public static void main(String[] args) throws IOException {
        // Before anything creates a logger: warn level, on stderr.
        System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", "warn");
        System.setProperty("org.slf4j.simpleLogger.logFile", "System.err");
        // Its only warnings are about HAPI's own bundled definitions ("Unknown element 'author'"),
        // at every start; project files are parsed with the strict handler instead.
        System.setProperty("org.slf4j.simpleLogger.log.ca.uhn.fhir.parser.LenientErrorHandler", "error");

        // The protocol owns stdout; anything a library prints there goes to stderr instead.
        PrintStream out = new PrintStream(
                new FileOutputStream(FileDescriptor.out), false, StandardCharsets.UTF_8);
        System.setOut(System.err);

        if (args.length != 1) {
            System.err.println("usage: java -cp '<jars>/*' Validate.java <profiles directory>");
            System.exit(2);
        }

        FhirContext ctx = FhirContext.forR4B();
        ProjectResources project = new ProjectResources(ctx);
        List<ObjectNode> problems = new ArrayList<>();
        int loaded = project.loadDirectory(Path.of(args[0]), problems);
        ValidationSupportChain chain = buildChain(ctx, project);
        FhirValidator validator = buildValidator(ctx, chain);
        project.checkSnapshots(chain, problems);

        // Warm up (loads the core definitions) so that "ready" means ready.
        validator.validateWithResult("{\"resourceType\":\"Basic\",\"code\":{\"text\":\"warm-up\"}}");

        ObjectNode ready = JSON.createObjectNode();
        ready.put("ready", true);
        ready.put("loaded", loaded);
        ready.putArray("problems").addAll(problems);
        writeLine(out, ready);

        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        while ((line = in.readLine()) != null) {
            if (line.isBlank()) {
                continue;
            }
            writeLine(out, answer(validator, line));
        }
        out.flush();
    }

    @SuppressWarnings("deprecation") // UnknownCodeSystemWarningValidationSupport, deprecated in 8.6
    static ValidationSupportChain buildChain(FhirContext ctx, IValidationSupport project) {
        UnknownCodeSystemWarningValidationSupport unknownCodeSystems =
                new UnknownCodeSystemWarningValidationSupport(ctx);
        unknownCodeSystems.setNonExistentCodeSystemSeverity(IValidationSupport.IssueSeverity.WARNING);

        ValidationSupportChain chain = new ValidationSupportChain(
                project,
                new DefaultProfileValidationSupport(ctx),
                new CommonCodeSystemsTerminologyService(ctx),
                new InMemoryTerminologyServerValidationSupport(ctx),
                new SnapshotGeneratingValidationSupport(ctx),
                unknownCodeSystems); // must come last
        return chain;
    }

    static FhirValidator buildValidator(FhirContext ctx, IValidationSupport chain) {
        FhirInstanceValidator module = new FhirInstanceValidator(chain);
        module.setErrorForUnknownProfiles(true);
        module.setAssumeValidRestReferences(true);
        module.setBestPracticeWarningLevel(BestPracticeWarningLevel.Ignore);

        FhirValidator validator = ctx.newValidator();
        validator.registerValidatorModule(module);
        return validator;
    }

    /** Validates one request line; never throws. */
    static ObjectNode answer(FhirValidator validator, String line) {
        ObjectNode response = JSON.createObjectNode();
        response.putNull("id");
        ArrayNode issues = response.putArray("issues");
        Request request = new Request();
        try {
            request.parse(line);
        } catch (Exception e) {
            response.set("id", request.id);
            issues.add(issue("fatal", "request", "malformed request line: " + describe(e)));
            return response;
        }
        response.set("id", request.id);
        if (request.error != null) {
            issues.add(issue("fatal", "request", request.error));
            return response;
        }
        try {
            ValidationResult result = validator.validateWithResult(request.resource);
            for (SingleValidationMessage m : result.getMessages()) {
                String severity = m.getSeverity() == null
                        ? "error" : m.getSeverity().name().toLowerCase(Locale.ROOT);
                ObjectNode issue = issue(severity, location(m), m.getMessage());
                if (m.getMessageId() != null) {
                    issue.put("messageId", m.getMessageId());
                }
                if (m.getLocationLine() != null && m.getLocationLine() > 0) {
                    issue.put("line", m.getLocationLine());
                }
                if (m.getLocationCol() != null && m.getLocationCol() > 0) {
                    issue.put("col", m.getLocationCol());
                }
                issues.add(issue);
            }
        } catch (Exception | StackOverflowError e) {
            issues.add(issue("fatal", "resource", "the validator failed: " + describe(e)));
        }
        return response;
    }

    /**
     * HAPI's location, except for a missing required element ("Task.status: minimum required =
     * 1"), which HAPI reports at its parent ("Task"): there the missing element is appended
     * ("Task.status"), so that the location names the element to fix.
     */
    static String location(SingleValidationMessage m) {
        String location = m.getLocationString();
        String message = m.getMessage();
        if ("Validation_VAL_Profile_Minimum".equals(m.getMessageId())
                && location != null && !location.isEmpty() && message != null) {
            int end = message.indexOf(": minimum required");
            if (end > 0) {
                String path = message.substring(0, end);
                String element = path.substring(path.lastIndexOf('.') + 1);
                if (!element.isEmpty() && element.chars().noneMatch(Character::isWhitespace)) {
                    return location + "." + element;
                }
            }
        }
        return location;
    }

    static ObjectNode issue(String severity, String location, String message) {
        ObjectNode issue = JSON.createObjectNode();
        issue.put("severity", severity);
        issue.put("location", location == null ? "" : location);
        issue.put("message", message == null ? "" : message);
        return issue;
    }

    static String describe(Throwable e) {
        String message = e.getMessage();
        return message == null || message.isBlank()
                ? e.getClass().getSimpleName() : e.getClass().getSimpleName() + ": " + message;
    }

    static void writeLine(PrintStream out, JsonNode node) throws IOException {
        out.print(JSON.writeValueAsString(node)); // compact: no line breaks inside
        out.print('\n');
        out.flush();
    }

    /**
     * A request line. The resource is kept as the exact text it had in the line, so that what is
     * validated is what the gateway produced (number formats, duplicate keys and all).
     */
    static final class Request {
        JsonNode id = JSON.nullNode();
        String resource;
        String error;

        void parse(String line) throws IOException {
            Request request = this;
            JsonFactory factory = JSON.getFactory();
            try (JsonParser parser = factory.createParser(line)) {
                if (parser.nextToken() != JsonToken.START_OBJECT) {
                    throw new IOException("expected a JSON object");
                }
                while (parser.nextToken() == JsonToken.FIELD_NAME) {
                    String field = parser.currentName();
                    JsonToken value = parser.nextToken();
                    if ("id".equals(field)) {
                        request.id = parser.readValueAsTree();
                        if (request.id == null) {
                            request.id = JSON.nullNode();
                        }
                    } else if ("resource".equals(field)) {
                        if (value != JsonToken.START_OBJECT) {
                            request.error = "\"resource\" must be a JSON object";
                            parser.skipChildren();
                            continue;
                        }
                        int start = (int) parser.currentTokenLocation().getCharOffset();
                        parser.skipChildren();
                        int end = (int) parser.currentLocation().getCharOffset();
                        if (start < 0 || end <= start || end > line.length()) {
                            throw new IOException("cannot locate the resource in the line");
                        }
                        request.resource = line.substring(start, end);
                    } else {
                        parser.skipChildren();
                    }
                }
                if (parser.currentToken() != JsonToken.END_OBJECT) {
                    throw new IOException("expected a JSON object");
                }
                if (parser.nextToken() != null) {
                    throw new IOException("trailing content after the JSON object");
                }
            }
            if (request.error == null && request.resource == null) {
                request.error = "the request has no \"resource\"";
            }
        }
    }

    /**
     * The project's conformance resources. PrePopulatedValidationSupport keeps StructureDefinitions,
     * CodeSystems and ValueSets; Questionnaires (for QuestionnaireResponse.questionnaire) are
     * answered here from fetchResource.
     */
    static final class ProjectResources extends PrePopulatedValidationSupport {
        private final Map<String, Questionnaire> questionnaires = new HashMap<>();
        private final Map<String, Path> sources = new HashMap<>();
        private final Map<String, IBaseResource> structureDefinitions = new TreeMap<>();

        ProjectResources(FhirContext ctx) {
            super(ctx);
        }

        @Override
        public String getName() {
            return "project profiles/";
        }

        /**
         * Generates the snapshot of every project StructureDefinition, as validation will, and
         * reports the generator's errors as problems: HAPI's SnapshotGeneratingValidationSupport
         * drops them, so a differential element the base does not have (a misspelt path) would
         * otherwise be ignored without a word.
         */
        void checkSnapshots(IValidationSupport chain, List<ObjectNode> problems) {
            FhirContext ctx = getFhirContext();
            VersionCanonicalizer canonicalizer = new VersionCanonicalizer(ctx);
            WorkerContextValidationSupportAdapter worker = new WorkerContextValidationSupportAdapter(chain);
            for (Map.Entry<String, IBaseResource> entry : structureDefinitions.entrySet()) {
                Path file = sources.get(entry.getKey());
                try {
                    org.hl7.fhir.r5.model.StructureDefinition profile =
                            canonicalizer.structureDefinitionToCanonical(entry.getValue());
                    if (!profile.hasBaseDefinition()) {
                        continue; // a base definition of its own: nothing to generate from
                    }
                    org.hl7.fhir.r5.model.StructureDefinition base = worker.fetchResource(
                            org.hl7.fhir.r5.model.StructureDefinition.class, profile.getBaseDefinition());
                    if (base == null) {
                        problems.add(problem(file, "baseDefinition " + profile.getBaseDefinition()
                                + " is unknown (neither FHIR R4B core nor in the profiles directory)"));
                        continue;
                    }
                    List<ValidationMessage> messages = new ArrayList<>();
                    ProfileUtilities utilities =
                            new ProfileUtilities(worker, messages, new ProfileKnowledgeWorkerR5(ctx));
                    utilities.generateSnapshot(base, profile, profile.getUrl(), null, profile.getName());
                    for (ValidationMessage m : messages) {
                        if (m.getLevel() == ValidationMessage.IssueSeverity.ERROR
                                || m.getLevel() == ValidationMessage.IssueSeverity.FATAL) {
                            String where = m.getLocation() == null ? "" : m.getLocation() + ": ";
                            problems.add(problem(file, "snapshot generation: " + where + m.getMessage()));
                        }
                    }
                } catch (Exception e) {
                    problems.add(problem(file, "snapshot generation failed: " + describe(e)));
                }
            }
        }

        /** A profiles/ file that is not (fully) usable: reported in the ready line and on stderr. */
        static ObjectNode problem(Path file, String message) {
            ObjectNode problem = JSON.createObjectNode();
            problem.put("file", String.valueOf(file));
            problem.put("message", message);
            System.err.println("WARN Validate - " + file + ": " + message);
            return problem;
        }

        int loadDirectory(Path dir, List<ObjectNode> problems) {
            if (!Files.isDirectory(dir)) {
                return 0;
            }
            List<Path> files;
            try (Stream<Path> walk = Files.walk(dir)) {
                files = walk.filter(Files::isRegularFile)
                        .filter(p -> p.getFileName().toString().toLowerCase(Locale.ROOT).endsWith(".json"))
                        .sorted()
                        .collect(Collectors.toList());
            } catch (IOException | UncheckedIOException e) {
                problems.add(problem(dir, "cannot list the directory: " + describe(e)));
                return 0;
            }
            int loaded = 0;
            for (Path file : files) {
                try {
                    if (load(file)) {
                        loaded++;
                    }
                } catch (Exception e) {
                    problems.add(problem(file, "not loaded: " + describe(e)));
                }
            }
            return loaded;
        }

        /** Loads one file; false if it is not a kind of resource that is loaded. */
        private boolean load(Path file) throws IOException {
            String text = Files.readString(file, StandardCharsets.UTF_8);
            JsonNode tree = JSON.readTree(text);
            if (tree == null || !tree.isObject()) {
                throw new IOException("not a JSON object");
            }
            String type = tree.path("resourceType").asText("");
            if (!LOADED_TYPES.contains(type)) {
                return false;
            }
            String url = tree.path("url").asText("");
            if (url.isEmpty()) {
                throw new IOException(type + " has no url, so nothing can refer to it");
            }
            String version = tree.path("version").asText("");
            String key = type + " " + url + (version.isEmpty() ? "" : "|" + version);
            Path previous = sources.get(key);
            if (previous != null) {
                throw new IOException("duplicate " + key + " (already loaded from " + previous + ")");
            }
            IBaseResource resource = getFhirContext().newJsonParser()
                    .setParserErrorHandler(new StrictErrorHandler())
                    .parseResource(text);
            sources.put(key, file);
            if (resource instanceof Questionnaire) {
                questionnaires.put(url, (Questionnaire) resource);
                if (!version.isEmpty()) {
                    questionnaires.put(url + "|" + version, (Questionnaire) resource);
                }
            } else {
                if (resource instanceof StructureDefinition) {
                    structureDefinitions.put(key, resource);
                }
                addResource(resource);
            }
            return true;
        }

        @Override
        public <T extends IBaseResource> T fetchResource(Class<T> type, String uri) {
            if (uri != null && (type == null || type.isAssignableFrom(Questionnaire.class))) {
                Questionnaire questionnaire = questionnaires.get(uri);
                if (questionnaire != null) {
                    @SuppressWarnings("unchecked")
                    T found = (T) questionnaire;
                    return found;
                }
            }
            return super.fetchResource(type, uri);
        }
    }
}
