/**
 * The registry of model families (`--model`): each family is one record (./family.ts) exported
 * by its own file. `glonet train` takes its `--model` choices, its `--arch` values and its
 * defaults from here, so a family registered with {@link registerFamily} is a family users train.
 */
import { ModelConfigError, type BuildOptions, type BuiltModel, type DataShape, type ModelFamily } from './family.js';
import { mlpFamily } from './mlp.js';
import { resnet20Family } from './resnet20.js';
import { vitFamily } from './vit.js';

const families = new Map<string, ModelFamily>();

/** Register a model family (`--model NAME`); a family of the same name is replaced. */
export function registerFamily(family: ModelFamily): void {
  families.set(family.name, family);
}

for (const f of [mlpFamily, resnet20Family, vitFamily]) registerFamily(f);

/** The registered family names, in registration order. */
export function familyNames(): string[] {
  return [...families.keys()];
}

/** The family named by `--model`, or a ModelConfigError listing the registered ones. */
export function getFamily(name: string): ModelFamily {
  const family = families.get(name);
  if (!family) throw new ModelConfigError(`--model: expected one of ${familyNames().join(', ')}, got '${name}'`);
  return family;
}

/** The training protocol of a family's architecture (its first architecture when not given). */
export function familyDefaults(model: string, arch?: string): Protocol {
  const family = getFamily(model);
  const { reason: _reason, ...protocol } = family.defaults(arch ?? family.archs[0]);
  return protocol;
}

/**
 * Builds a model of a registered family (`o.model`) for data of this shape.
 *
 * @throws {@link ModelConfigError} for an unknown family or architecture, a bad depth or width,
 * or data the family cannot take.
 */
export function buildModel(o: BuildOptions, data: DataShape): BuiltModel {
  return getFamily(o.model).build(o, data);
}

export type { BuildOptions, BuiltModel, DataShape, Defaults, FamilyLimits, ModelFamily, ModelSize } from './family.js';
export { ModelConfigError } from './family.js';
import type { Protocol } from '../vocabulary.js';
export type { Protocol } from '../vocabulary.js';
