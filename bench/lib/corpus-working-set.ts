// The files an "application start" reads from a makeCorpus image (test/helpers/corpus.ts): the tool binary, the
// second layer's library and every 20th small file minus a scattered few, so a start touches most of the layers.
export function corpusWorkingSet(smallFiles: number): string[] {
  return [
    'usr/bin/tool',
    'usr/lib/layer2.bin',
    ...Array.from({ length: smallFiles }, (_, i) => i)
      .filter((i) => i % 20 === 7 && (i * 7919) % 9000 > 0)
      .map((i) => `usr/share/data/${String(Math.floor(i / 100)).padStart(3, '0')}/file-${i}.dat`),
  ];
}
