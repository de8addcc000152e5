"""Do two threads making a process's first OpenVINO inference at once deadlock? Each try is a fresh process
that opens an int8 graph with two streams and calls it from two threads released together; a try that has not
answered within 20 s is counted as hung and killed. A second process keeps both cores busy meanwhile (the
deadlock needs the two first calls to meet inside OpenVINO's binding; on an idle machine it rarely does).

    python benchmarks/results/serve_sst2_minilm/amx/first_call_race/first_call_race.py GRAPH.xml TRIES OUT.json
(first_call_race.json: what it gave, the stacks of the deadlock it looks for, and how it was found.)
(run from the project root, with PYTHONPATH=.; GRAPH.xml: an exported model's onnx/model_openvino_int8.xml)
"""

import json
import subprocess
import sys
from pathlib import Path

ONE_TRY = """
import sys, threading
from skeleton.deploy.runtimes import OpenVinoRuntime, synthetic_batch
runtime = OpenVinoRuntime(sys.argv[1], "int8", streams=2)
barrier, feeds = threading.Barrier(2), synthetic_batch(4, 16, 1000)
def call():
    barrier.wait()
    runtime.run(feeds)
threads = [threading.Thread(target=call) for _ in range(2)]
[t.start() for t in threads]
[t.join() for t in threads]
"""


LOAD = """
import sys, time
import numpy as np
matrix, until = np.random.default_rng(0).random((600, 600)), time.monotonic() + float(sys.argv[1])
while time.monotonic() < until:
    matrix @ matrix
"""


def main() -> None:
    from skeleton.core.machine import describe_cpu
    from skeleton.core.outputs import source_commit

    graph, tries, out = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    busy = subprocess.Popen([sys.executable, "-c", LOAD, str(tries * 20.0)])  # both cores, from another process
    hung = 0
    try:
        for _ in range(tries):
            try:
                subprocess.run([sys.executable, "-c", ONE_TRY, graph], timeout=20, check=True, capture_output=True)
            except subprocess.TimeoutExpired:
                hung += 1
            except subprocess.CalledProcessError as error:  # not a hang: the graph did not open or run
                last = (error.stderr or b"").decode().strip().splitlines()[-1:] or ["no output"]
                raise SystemExit(f"a try failed instead of answering or hanging: {last[0]}") from None
    finally:
        busy.kill()
    result = {"graph": graph, "tries": tries, "hung": hung, "code": source_commit(), "machine": describe_cpu()}
    out.write_text(json.dumps(result, indent=1))
    print(json.dumps({"tries": tries, "hung": hung, "code": result["code"]}))


if __name__ == "__main__":
    main()
