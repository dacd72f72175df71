/**
 * A check of model.json's layer graph before TF.js builds it. TF.js rebuilds a functional model by
 * calling its layers in whatever order their inputs become available, in a loop that only ends
 * when every call is made; a graph where some call can never be made (an input naming a layer that
 * does not exist, a layer without a name, a cycle) keeps it looping forever. This file runs the
 * same schedule on names and counts alone and reports such a graph instead.
 */

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Keras writes snake_case, TF.js reads either. */
const field = (o: Json, snake: string, camel: string): unknown => (o[snake] !== undefined ? o[snake] : o[camel]);

/** Why a functional model's config (`{layers, input_layers, output_layers}`) cannot be rebuilt, or undefined. */
function graphProblem(config: Json, where: string): string | undefined {
  const layers = config.layers;
  if (!Array.isArray(layers)) return `${where}: layers must be a list`;
  const names = new Set<string>();
  for (const [i, l] of layers.entries()) {
    if (!isObject(l) || typeof l.name !== 'string' || l.name === '') return `${where}: layer ${i + 1} has no name`;
    if (names.has(l.name)) return `${where}: two layers are named '${l.name.slice(0, 60)}'`;
    names.add(l.name);
    const inner = topologyProblem(l, `${where} > ${l.name.slice(0, 60)}`);
    if (inner) return inner;
  }
  // A layer's calls are made in order; the k-th call needs its inputs' calls to exist.
  const made = new Map<string, number>();
  const pending = new Map<string, Array<Array<[unknown, unknown]>>>();
  for (const l of layers as Json[]) {
    made.set(l.name as string, field(l, 'class_name', 'className') === 'InputLayer' ? 1 : 0);
    const nodes = field(l, 'inbound_nodes', 'inboundNodes') ?? [];
    if (!Array.isArray(nodes) || !nodes.every((n) => Array.isArray(n) && n.every((x) => Array.isArray(x)))) {
      return `${where}: layer '${(l.name as string).slice(0, 60)}' has malformed inbound_nodes`;
    }
    for (const node of nodes as Array<Array<[unknown, unknown]>>) {
      for (const [inbound, index] of node) {
        if (typeof inbound !== 'string' || !names.has(inbound)) return `${where}: layer '${(l.name as string).slice(0, 60)}' reads from '${String(inbound).slice(0, 60)}', which is not a layer of the model`;
        if (!Number.isSafeInteger(index) || (index as number) < 0) return `${where}: layer '${(l.name as string).slice(0, 60)}' names call ${String(index).slice(0, 20)} of '${inbound.slice(0, 60)}'`;
      }
    }
    if (nodes.length) pending.set(l.name as string, (nodes as Array<Array<[unknown, unknown]>>).slice());
  }
  // TF.js's schedule: passes over the layers in order; a call whose inputs exist is made, the
  // others go back to the end of their layer's queue.
  while (pending.size) {
    let progress = false;
    for (const l of layers as Json[]) {
      const name = l.name as string;
      const nodes = pending.get(name);
      if (!nodes) continue;
      pending.delete(name);
      for (const node of nodes) {
        if (node.every(([inbound, index]) => (made.get(inbound as string) ?? 0) > (index as number))) {
          made.set(name, (made.get(name) ?? 0) + 1);
          progress = true;
        } else {
          pending.set(name, [...(pending.get(name) ?? []), node]);
        }
      }
    }
    if (!progress) return `${where}: the inputs of layer '${[...pending.keys()][0].slice(0, 60)}' can never be computed (a cycle, or a call of a layer that is never made)`;
  }
  for (const key of [['input_layers', 'inputLayers'], ['output_layers', 'outputLayers']] as const) {
    const refs = field(config, key[0], key[1]);
    if (!Array.isArray(refs) || !refs.every((r) => Array.isArray(r) && typeof r[0] === 'string' && names.has(r[0]) && Number.isSafeInteger(r[1]) && r[1] >= 0 && r[1] < (made.get(r[0]) ?? 0))) {
      return `${where}: ${key[0]} must name calls of the model's layers`;
    }
  }
  return undefined;
}

/** Why a model topology (or a layer of one) cannot be rebuilt by TF.js, or undefined when it can be tried. */
export function topologyProblem(topology: unknown, where = 'modelTopology'): string | undefined {
  if (!isObject(topology)) return `${where}: expected an object`;
  if (isObject(topology.model_config)) return topologyProblem(topology.model_config, where);
  const cls = field(topology, 'class_name', 'className');
  const config = topology.config;
  if ((cls === 'Model' || cls === 'Functional') && isObject(config)) return graphProblem(config, where);
  if (cls === 'Sequential' && isObject(config) && Array.isArray(config.layers)) {
    for (const [i, l] of config.layers.entries()) {
      const inner = topologyProblem(l, `${where} > layer ${i + 1}`);
      if (inner) return inner;
    }
  }
  return undefined;
}
