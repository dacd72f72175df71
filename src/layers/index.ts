/** Every custom layer of the package; importing this module registers them for deserialization. */
export { GloNet, gloNetLayer, gloNetSum, gloNetOutputShape, GloNetShapeError } from './glonet.js';
export { glonet, applyBlock, type Block, type GloNetChainArgs } from './chain.js';
export { ClassToken, PositionEmbedding, MultiHeadSelfAttention, TokenSlice, type SeededLayerArgs, type MultiHeadSelfAttentionArgs, type TokenSliceArgs } from './vit.js';
export { BlockScale, FixedCenter, WSConv2D, WS_RELU_GAMMA, WS_EPSILON, type BlockScaleArgs, type FixedCenterArgs, type WSConv2DArgs } from './normfree.js';
