//! `healthchain permissions …`: the consortium admins' side of on-chain permissioning over
//! JSON-RPC — list, add and remove the accounts that may transact, the nodes that may
//! connect, and the admins. The rules and admin contracts are looked up through the
//! ingress contracts' registry, so a replaced rules contract is followed.

use alloy_primitives::{Address, B256, Bytes};
use alloy_sol_types::SolCall;
use anyhow::Context;
use clap::{Args, Subcommand};
use healthchain_contracts::permissioning::{
    ACCOUNT_INGRESS_ADDRESS, AccountIngress, AccountRules, Admin, NODE_INGRESS_ADDRESS, NodeRules,
};
use healthchain_permissioning::EnodeUrl;

use crate::client::{Client, RpcArgs};

/// `healthchain permissions`.
#[derive(Debug, Clone, Args)]
pub(crate) struct PermissionsArgs {
    #[command(flatten)]
    rpc: RpcArgs,
    /// The account ingress contract.
    #[arg(long, default_value_t = ACCOUNT_INGRESS_ADDRESS)]
    account_ingress: Address,
    /// The node ingress contract.
    #[arg(long, default_value_t = NODE_INGRESS_ADDRESS)]
    node_ingress: Address,
    #[command(subcommand)]
    command: PermissionsCommand,
}

#[derive(Debug, Clone, Subcommand)]
enum PermissionsCommand {
    /// The accounts that may transact.
    Accounts,
    /// Let accounts transact (admins only).
    AddAccount {
        /// The accounts.
        #[arg(required = true)]
        accounts: Vec<Address>,
    },
    /// Stop an account transacting (admins only).
    RemoveAccount {
        /// The account.
        account: Address,
    },
    /// The nodes that may connect.
    Nodes,
    /// Let a node connect: `enode://<128 hex>@host:port` (admins only).
    AddNode {
        /// The node.
        enode: EnodeUrl,
    },
    /// Disconnect a node and keep it out (admins only).
    RemoveNode {
        /// The node.
        enode: EnodeUrl,
    },
    /// The permissioning admins.
    Admins,
    /// Make an account an admin (admins only).
    AddAdmin {
        /// The account.
        account: Address,
    },
    /// Remove an admin (admins only; not yourself).
    RemoveAdmin {
        /// The account.
        account: Address,
    },
}

/// `bytes32("rules")` and `bytes32("administration")`: the ingress registry's keys.
fn registry_key(name: &str) -> B256 {
    let mut key = B256::ZERO;
    key[..name.len()].copy_from_slice(name.as_bytes());
    key
}

async fn registered(client: &Client, ingress: Address, name: &str) -> anyhow::Result<Address> {
    let data = AccountIngress::getContractAddressCall {
        name: registry_key(name),
    }
    .abi_encode();
    let out = client.call(ingress, data.into()).await?;
    let address = AccountIngress::getContractAddressCall::abi_decode_returns(&out)
        .context("decoding getContractAddress")?;
    anyhow::ensure!(
        !address.is_zero(),
        "no {name:?} contract is registered in the ingress at {ingress}"
    );
    Ok(address)
}

async fn view<C: SolCall>(client: &Client, to: Address, call: C) -> anyhow::Result<C::Return> {
    let out: Bytes = client.call(to, call.abi_encode().into()).await?;
    C::abi_decode_returns(&out).with_context(|| format!("decoding {}", C::SIGNATURE))
}

/// `healthchain permissions`.
pub(crate) fn permissions(args: &PermissionsArgs) -> anyhow::Result<()> {
    crate::health::runtime()?.block_on(async {
        let client = Client::connect(&args.rpc).await?;
        let send = |to: Address, data: Vec<u8>| client.send_reported(to, data);
        use PermissionsCommand as C;
        match &args.command {
            C::Accounts => {
                let rules = registered(&client, args.account_ingress, "rules").await?;
                for account in view(&client, rules, AccountRules::getAccountsCall {}).await? {
                    println!("{account}");
                }
            }
            C::AddAccount { accounts } => {
                let rules = registered(&client, args.account_ingress, "rules").await?;
                let data = match accounts.as_slice() {
                    [account] => AccountRules::addAccountCall { account: *account }.abi_encode(),
                    list => AccountRules::addAccountsCall {
                        list: list.to_vec(),
                    }
                    .abi_encode(),
                };
                send(rules, data).await?;
            }
            C::RemoveAccount { account } => {
                let rules = registered(&client, args.account_ingress, "rules").await?;
                send(
                    rules,
                    AccountRules::removeAccountCall { account: *account }.abi_encode(),
                )
                .await?;
            }
            C::Nodes => {
                let rules = registered(&client, args.node_ingress, "rules").await?;
                let size = view(&client, rules, NodeRules::getSizeCall {}).await?;
                let size = u64::try_from(size).context("node list size")?;
                for index in 0..size {
                    let node = view(
                        &client,
                        rules,
                        NodeRules::getByIndexCall {
                            index: alloy_primitives::U256::from(index),
                        },
                    )
                    .await?;
                    println!("enode://{}@{}:{}", node.enodeId, node.host, node.port);
                }
            }
            C::AddNode { enode } => {
                let rules = registered(&client, args.node_ingress, "rules").await?;
                let call = NodeRules::addEnodeCall {
                    enodeId: enode.id.clone(),
                    host: enode.host.clone(),
                    port: enode.port,
                };
                send(rules, call.abi_encode()).await?;
            }
            C::RemoveNode { enode } => {
                let rules = registered(&client, args.node_ingress, "rules").await?;
                let call = NodeRules::removeEnodeCall {
                    enodeId: enode.id.clone(),
                    host: enode.host.clone(),
                    port: enode.port,
                };
                send(rules, call.abi_encode()).await?;
            }
            C::Admins => {
                let admin = registered(&client, args.account_ingress, "administration").await?;
                for account in view(&client, admin, Admin::getAdminsCall {}).await? {
                    println!("{account}");
                }
            }
            C::AddAdmin { account } => {
                let admin = registered(&client, args.account_ingress, "administration").await?;
                send(
                    admin,
                    Admin::addAdminCall { account: *account }.abi_encode(),
                )
                .await?;
            }
            C::RemoveAdmin { account } => {
                let admin = registered(&client, args.account_ingress, "administration").await?;
                send(
                    admin,
                    Admin::removeAdminCall { account: *account }.abi_encode(),
                )
                .await?;
            }
        }
        anyhow::Ok(())
    })
}
