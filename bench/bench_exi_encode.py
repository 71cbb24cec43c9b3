"""EXI encode throughput of openv2gx per message type, next to the Java EXIficient codec that the
PyPI package iso15118 drives through py4j, measured in the same run on the same messages.

Inputs: the typical charging-loop messages (CurrentDemandReq/Res, ChargingStatusReq/Res,
PreChargeReq/Res, DC_ChargeLoopReq/Res) at realistic sizes: the EXI payloads of sessions.jsonl and
the ``typ`` variant of ../shared/vectors, decoded once, then encoded over and over. Prints
messages/s and microseconds per message per type and all together, and the ratio to Java, timed
two ways: as iso15118 calls it (one py4j call with the message as JSON per message), and, where a
JDK can compile a small loop (javac), EXIficient's own encoder inside the JVM after warm-up, from
the message's XML (SAX parse included: that is EXIficient's input), without py4j.

    python3 bench/bench_exi_encode.py [--seconds 0.3] [--java-rounds 10] [--no-java]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from exi_peers import JAVA_NAMESPACE, SHARED, TYPICAL, best_rate, java_codec  # noqa: E402

import openv2gx  # noqa: E402

VECTOR_FILES = ("din", "iso2", "iso20", "sessions")


def load_typical():
    """(grammar, message name, bytes, decoded message) of each typical message at realistic size."""
    found = []
    for name in VECTOR_FILES:
        path = SHARED / "vectors" / f"{name}.jsonl"
        if not path.exists():
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            message_name = record.get("message")
            variant = record.get("variant", "session").split("#")[0]
            if message_name not in TYPICAL or variant not in ("session", "typ"):
                continue
            data = bytes.fromhex(record.get("exi_hex") or record["payload_hex"])
            found.append((record["grammar"], message_name, data, openv2gx.decode(data, record["grammar"])))
    return found


def rate(items, seconds: float) -> float:
    """Messages per second encoding the list over and over for about ``seconds`` (best of 3)."""
    encode = openv2gx.encode

    def run_all():
        for grammar, _, _, message in items:
            encode(message, grammar)
    return best_rate(run_all, len(items), seconds)


def java_inputs(codec, items):
    """Each message as the JSON iso15118 encodes from (its own decode of our bytes), where it has one;
    and how many of those Java encodes to exactly our bytes."""
    usable = []
    same = 0
    for grammar, name, data, message in items:
        namespace = JAVA_NAMESPACE[grammar]
        try:
            as_json = codec.decode(data, namespace)
            java_bytes = bytes(codec.encode(as_json, namespace))
        except Exception:  # iso15118's JSON layer cannot express every message; time what it can
            continue
        same += java_bytes == openv2gx.encode(message, grammar)
        usable.append((grammar, name, namespace, as_json))
    return usable, same


def java_rate(codec, usable, rounds: int) -> float:
    start = time.perf_counter()
    for _ in range(rounds):
        for _, _, namespace, as_json in usable:
            codec.encode(as_json, namespace)
    return rounds * len(usable) / (time.perf_counter() - start)


#: the pre-generated EXIficient grammar class in EXICodec.jar for each grammar timed here
JAVA_GRAMMAR_CLASS = {"din": "DINSpec_70121", "iso2": "ISO15118_2Grammar", "iso20_DC": "ISO15118_20_V2G_CI_DC"}

#: in-JVM loop: per message type, encode its XML documents (one per line) over and over; prints
#: the label, nanoseconds per message, and the hex of each document's encoding
JAVA_LOOP = """
import com.siemens.ct.exi.core.EXIFactory;
import com.siemens.ct.exi.core.grammars.Grammars;
import com.siemens.ct.exi.core.helpers.DefaultEXIFactory;
import com.siemens.ct.exi.main.api.sax.EXIResult;
import java.io.ByteArrayOutputStream;
import java.io.StringReader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HexFormat;
import java.util.List;
import org.xml.sax.InputSource;
import org.xml.sax.XMLReader;
import org.xml.sax.helpers.XMLReaderFactory;

public class EncodeLoop {
    static byte[] encode(EXIFactory factory, XMLReader reader, String xml) throws Exception {
        EXIResult result = new EXIResult(factory);
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        result.setOutputStream(out);
        reader.setContentHandler(result.getHandler());
        reader.parse(new InputSource(new StringReader(xml)));
        return out.toByteArray();
    }

    public static void main(String[] args) throws Exception {
        double seconds = Double.parseDouble(args[0]);
        for (int i = 1; i + 2 < args.length; i += 3) {
            EXIFactory factory = DefaultEXIFactory.newInstance();
            factory.setGrammars((Grammars) Class.forName("com.siemens.ct.exi.main.generatedgrammar." + args[i + 1])
                .getDeclaredConstructor().newInstance());
            factory.setValuePartitionCapacity(0);
            factory.setValueMaxLength(0);
            factory.setMaximumNumberOfBuiltInElementGrammars(0);
            factory.setMaximumNumberOfBuiltInProductions(0);
            XMLReader reader = XMLReaderFactory.createXMLReader();
            List<String> documents = Files.readAllLines(Path.of(args[i + 2]));
            StringBuilder hex = new StringBuilder();
            for (String xml : documents) {
                hex.append(' ').append(HexFormat.of().formatHex(encode(factory, reader, xml)));
            }
            long warmUntil = System.nanoTime() + (long) (seconds * 1e9);
            while (System.nanoTime() < warmUntil) {
                for (String xml : documents) encode(factory, reader, xml);
            }
            long count = 0;
            long start = System.nanoTime();
            long until = start + (long) (seconds * 1e9);
            while (System.nanoTime() < until) {
                for (String xml : documents) encode(factory, reader, xml);
                count += documents.size();
            }
            System.out.println(args[i] + " " + (System.nanoTime() - start) / count + hex);
        }
    }
}
"""


def java_in_jvm(by_type, seconds: float):
    """{(grammar, name): (ns per message, all bytes equal ours)} from EXIficient inside the JVM,
    or the reason it cannot run."""
    javac, java = shutil.which("javac"), shutil.which("java")
    if javac is None or java is None:
        return None, "no JDK (javac) to compile the in-JVM loop; the py4j figures above stand alone"
    try:
        from iso15118.shared.settings import JAR_FILE_PATH
    except Exception as exc:
        return None, f"iso15118 cannot be imported ({type(exc).__name__})"
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "EncodeLoop.java"
        source.write_text(JAVA_LOOP, encoding="utf-8")
        compiled = subprocess.run([javac, "-cp", JAR_FILE_PATH, "-d", folder, str(source)],
                                  capture_output=True, text=True)
        if compiled.returncode != 0:
            return None, "javac failed: " + compiled.stderr.strip().splitlines()[-1]
        arguments = [str(seconds)]
        for number, ((grammar, name), group) in enumerate(sorted(by_type.items())):
            documents = Path(folder) / f"{number}.xml"
            documents.write_text("\n".join(message.to_xml() for _, _, _, message in group), encoding="utf-8")
            arguments += [f"{grammar}/{name}", JAVA_GRAMMAR_CLASS[grammar], str(documents)]
        ran = subprocess.run([java, "-cp", f"{JAR_FILE_PATH}:{folder}", "EncodeLoop", *arguments],
                             capture_output=True, text=True, timeout=600)
        if ran.returncode != 0:
            return None, "the in-JVM loop failed: " + (ran.stderr.strip().splitlines() or ["?"])[-1]
    results = {}
    for line in ran.stdout.splitlines():
        label, nanoseconds, *hexes = line.split()
        grammar, name = label.split("/")
        ours = [data.hex() for _, _, data, _ in by_type[(grammar, name)]]
        results[(grammar, name)] = (int(nanoseconds), hexes == ours)
    return results, ""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=0.3, help="time per message type")
    parser.add_argument("--java-rounds", type=int, default=10)
    parser.add_argument("--no-java", action="store_true")
    args = parser.parse_args()

    items = load_typical()
    if not items:
        sys.exit(f"no vectors in {SHARED / 'vectors'}")
    for grammar, name, data, message in items:
        assert openv2gx.encode(message, grammar) == data, f"{grammar} {name} does not round-trip"
    by_type = defaultdict(list)
    for item in items:
        by_type[(item[0], item[1])].append(item)

    print(f"openv2gx encode, {len(items)} typical messages (sessions.jsonl + typ vectors), "
          f"{len(by_type)} message types (Python {sys.version.split()[0]})")
    print(f"{'grammar':10} {'message':20} {'n':>3} {'bytes':>6} {'msg/s':>9} {'us/msg':>8}")
    rates = {}
    for (grammar, name), group in sorted(by_type.items()):
        rates[(grammar, name)] = rate(group, args.seconds)
        size = statistics.mean(len(item[2]) for item in group)
        print(f"{grammar:10} {name:20} {len(group):3} {size:6.0f} {rates[(grammar, name)]:9.0f} "
              f"{1e6 / rates[(grammar, name)]:8.1f}")
    overall = rate(items, args.seconds * 5)
    print(f"\nall typical ({len(items)}):{'':22} {overall:9.0f} msg/s {1e6 / overall:8.1f} us/msg"
          f"   target >= 20000 msg/s")

    if args.no_java:
        print("\nJava EXIficient (iso15118): skipped (--no-java)")
        return
    codec, why = java_codec()
    if codec is None:
        print(f"\nJava EXIficient (iso15118): cannot run: {why}")
        return
    usable, same = java_inputs(codec, items)
    if not usable:
        print("\nJava EXIficient (iso15118): its JSON layer took none of the messages")
        return
    print(f"\nJava EXIficient {codec.get_version()} encode through py4j (iso15118: one call per message, "
          f"JSON in), {len(usable)} of the {len(items)} messages, {same} of them to exactly our bytes:")
    java_by_type = defaultdict(list)
    for entry in usable:
        java_by_type[(entry[0], entry[1])].append(entry)
    for key, group in sorted(java_by_type.items()):
        java = java_rate(codec, group, args.java_rounds)
        print(f"  {key[0]:10} {key[1]:20} {java:9.0f} msg/s {1e6 / java:8.1f} us/msg; "
              f"openv2gx / Java = {rates[key] / java:.0f}x")
    ours = rate([item for item in items if (item[0], item[1]) in java_by_type], args.seconds * 5)
    java = java_rate(codec, usable, args.java_rounds)
    print(f"  all {len(usable):3}{'':27} {java:9.0f} msg/s {1e6 / java:8.1f} us/msg; "
          f"openv2gx / Java = {ours / java:.0f}x")
    codec.gateway.shutdown()

    in_jvm, why = java_in_jvm(by_type, args.seconds * 3)
    if in_jvm is None:
        print(f"\nJava EXIficient inside the JVM: cannot run: {why}")
        return
    print("\nJava EXIficient encode inside the JVM (XML in, SAX parse included, after warm-up, no py4j):")
    total_java = total_ours = 0.0
    for key, (nanoseconds, same) in sorted(in_jvm.items()):
        count = len(by_type[key])
        total_java += nanoseconds * count
        total_ours += 1e9 / rates[key] * count
        print(f"  {key[0]:10} {key[1]:20} {1e9 / nanoseconds:9.0f} msg/s {nanoseconds / 1e3:8.1f} us/msg; "
              f"openv2gx / Java = {1e9 / rates[key] / nanoseconds:.2f}x time{'' if same else '  (bytes differ!)'}")
    print(f"  all {len(items):3}{'':27} {len(items) * 1e9 / total_java:9.0f} msg/s; "
          f"openv2gx time / Java time = {total_ours / total_java:.2f}")


if __name__ == "__main__":
    main()
