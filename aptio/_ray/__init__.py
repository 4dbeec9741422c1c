"""aptio servers on a Ray cluster (behind :mod:`aptio.ray`): the channel that carries aptio's
wire protocol on Ray actor calls, the network of channels a node dials through, the server's
actor, and starting one."""
