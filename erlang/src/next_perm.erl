%% The seed's permutation driver (next_perm), served by the TypeScript node's
%% some_driver_NN processes: next_permutation / prev_permutation exactly as C++'s STL
%% (at the last permutation they wrap around to the first). Lists of 100,000 elements
%% or more are computed in a worker thread there, the driver_async analogue.
%%
%% The list travels as a binary of 32-bit little-endian integers both ways, so a large
%% list costs 4 bytes an element on the wire and no per-element decoding on the node.
-module(next_perm).

-export([next_perm/1, prev_perm/1, load/0, all_perm/1]).

%% Kept for the seed's callers: there is no driver to load here.
load() ->
    ok.

next_perm(L) -> next_perm(L, next_perm).

prev_perm(L) -> next_perm(L, prev_perm).

next_perm(L, Command) ->
    B = to_binary(L),
    case some_driver:call({Command, B}) of
        R when is_binary(R) -> [I || <<I:32/signed-little>> <= R];
        {error, Reason} -> erlang:error({next_perm, Reason}, [L]);
        {exit, Reason} -> erlang:error({next_perm, Reason}, [L])
    end.

%% badarg for anything but a proper list of 32-bit integers (not bad_generator for a non-list).
to_binary(L) when is_list(L) ->
    try << <<(int32(I)):32/signed-little>> || I <- L >>
    catch error:{bad_generator, _} -> erlang:error(badarg)
    end;
to_binary(_) ->
    erlang:error(badarg).

int32(I) when is_integer(I), I >= -16#80000000, I =< 16#7fffffff -> I;
int32(_) -> erlang:error(badarg).

all_perm(L) ->
    New = prev_perm(L),
    all_perm(New, L, [New]).

all_perm(L, L, Acc) ->
    Acc;
all_perm(L, Orig, Acc) ->
    New = prev_perm(L),
    all_perm(New, Orig, [New | Acc]).
