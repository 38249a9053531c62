/* init.h: parameter initialisation from a PARAM node's attributes.
 *
 *   init="normal"  N(0, scale^2)   (scale = std; linear / embedding weights: 0.02)
 *   init="ones"    1               (norm weights)
 *   init="zeros"   0               (biases, norm biases)
 *   init="const"   scale           (pos.scale = 1/sqrt(hidden))
 *
 * Normal draws come from a counter-based generator: element i of parameter P
 * is a pure function of (seed, hash(P's name), i), so values do not depend on
 * the order of parameters in the graph, on other parameters, or on threads.
 * Element pairs (2k, 2k+1) are one Box-Muller pair from the 64-bit words
 * splitmix64(key + 2k) and splitmix64(key + 2k + 1), key = mix(seed, hash).
 * See docs/train-step.md "Init".
 */
#ifndef CRAMC_INIT_H
#define CRAMC_INIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ir.h"

/* FNV-1a 64 of a parameter name. */
uint64_t ir_init_name_hash(const char *name);

/* Fills out[0..numel) for PARAM node n (values in double; the caller rounds
 * to f32 when it runs in f32). Returns false with a message for an unknown
 * init kind or a node that is not a param. */
bool ir_init_param(const Node *n, uint64_t seed, double *out, char *err, size_t errlen);

#endif
