#!/usr/bin/env cwl-runner
# Two steps: write n numbered lines to a file, then count that file's lines.
cwlVersion: v1.2
class: Workflow
inputs:
  lines: int
outputs:
  count:
    type: File
    outputSource: count/counted
steps:
  write:
    run:
      class: CommandLineTool
      baseCommand: seq
      inputs:
        lines: {type: int, inputBinding: {position: 1}}
      stdout: numbers.txt
      outputs:
        numbers: {type: stdout}
    in: {lines: lines}
    out: [numbers]
  count:
    run:
      class: CommandLineTool
      baseCommand: [wc, -l]
      stdin: $(inputs.numbers.path)
      inputs:
        numbers: File
      stdout: count.txt
      outputs:
        counted: {type: stdout}
    in: {numbers: write/numbers}
    out: [counted]
